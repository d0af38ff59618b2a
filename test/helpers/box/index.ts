/**
 * The pipeline in a box: the CDK stack as synthesized, deployed into a moto of
 * its own that enforces IAM, with every Lambda function run from its built
 * bundle and layers under its own role's policies, fed by its event sources as
 * AWS feeds it. No Docker, no network.
 *
 *   const box = await startBox({ context: { prefix: 'bx' }, functionTimeoutSeconds: 20 });
 *   await box.putSecret({ ... });
 *   await box.invoke('bx-lambda01-qualify', {});
 *   await box.request(`${box.outputs.EventsEndpoint}?code=...`, { body: [...] });
 *   await box.idle();
 *   ... box.s3() ... box.stats() ... box.logText() ...
 *   await box.stop();
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IAMClient } from '@aws-sdk/client-iam';
import { S3Client } from '@aws-sdk/client-s3';
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import ts from 'typescript';
import { readAssembly, synthesizeAssembly, type StackAssembly } from './assembly';
import { awsJsonCall } from './aws-json';
import { BOOTSTRAP_REQUESTS, bootstrapAdmin, type AwsConfig } from './iam';
import type { FunctionStats, InvocationRecord, LogLine } from './lambda/function';
import { functionUrlEvent, urlResponse, type FunctionUrlSpec, type UrlRequest, type UrlResponse } from './lambda/function-url';
import { LambdaService } from './lambda/service';
import { startIamMoto, type Denial, type IamMoto } from './moto';
import { deploy, type BoxResource } from './provision';
import { createBucket } from './resources/storage';
import type { AdminClients } from './resources/types';
import { waitForIdle, type IdleOptions } from './idle';
import { formatLogs, formatReport } from './report';

export type { BoxResource, Denial, FunctionStats, InvocationRecord, LogLine, UrlRequest, UrlResponse };

export interface BoxOptions {
  /** CDK context for the synth (prefix, largeBlobBytes, partBytes, bucketName...). */
  readonly context?: Record<string, unknown>;
  /** Run an already synthesized cloud assembly instead of synthesizing. @default - synthesize into a temporary directory */
  readonly assemblyDir?: string;
  /** Variables every function gets besides the template's, for a test's settings. @default - none */
  readonly environment?: Record<string, string>;
  /** Every function's timeout in seconds (or by function name), in place of the template's: the kill and getRemainingTimeInMillis. @default - the template's */
  readonly functionTimeoutSeconds?: number | Record<string, number>;
  /** Waits before the retries of an asynchronous invocation. @default [60000, 120000] (Lambda's) */
  readonly asyncRetryDelaysMs?: readonly number[];
  /** Every queue's visibility timeout in seconds, in place of the template's. @default - the template's */
  readonly visibilityTimeoutSeconds?: number;
  /** Share (0-1) of SNS notifications delivered to a function twice, as at-least-once delivery may. @default 0 */
  readonly duplicateRate?: number;
  /** The account's concurrency quota: a template reserving more than it less 100 fails, as its deployment would. @default 1000 */
  readonly accountConcurrency?: number;
  /** Containers of one function at once, at most (and never above its reserved concurrency). @default 4 */
  readonly maxConcurrencyPerFunction?: number;
  /** Write each function log line as it comes: true for stderr, or a function. @default $BOX_ECHO set */
  readonly echo?: boolean | ((line: LogLine) => void);
}

/** What `aws lambda invoke` answers. */
export interface InvokeResult {
  StatusCode: 200;
  FunctionError?: 'Unhandled';
  /** The handler's return value, or Lambda's `{errorType, errorMessage, trace}`. */
  Payload: unknown;
  requestId: string;
  durationMs: number;
  timedOut: boolean;
}

export interface BoxTimings {
  synthMs: number;
  /** From spawning moto until the box saw it listen: about 2-3 s, but the synth blocks the event loop, so never less than synthMs. */
  motoMs: number;
  bootstrapMs: number;
  deployMs: number;
  totalMs: number;
}

export interface Box {
  readonly endpoint: string;
  readonly region: string;
  readonly account: string;
  /** The admin's endpoint, region and key: for any SDK client. */
  readonly admin: AwsConfig;
  readonly assembly: StackAssembly;
  readonly timings: BoxTimings;
  readonly resources: readonly BoxResource[];
  /** The stack's Outputs, resolved: `box.outputs.BucketName`. */
  readonly outputs: Readonly<Record<string, string>>;
  /** A resource by logical id or physical name (queue, topic, bucket, function, table, secret). */
  resource(idOrName: string): BoxResource;
  functionNames(): string[];
  /** The endpoint, region and key of a function's role (its stand-in user). */
  configOf(functionName: string): AwsConfig;
  /** The ARN of the IAM user standing in for a function's role (as `denials` name it). */
  userArnOf(functionName: string): string;
  s3(): S3Client;
  sqs(): SQSClient;
  sns(): SNSClient;
  dynamodb(): DynamoDBClient;
  secrets(): SecretsManagerClient;
  iam(): IAMClient;
  /** A synchronous invocation, as `aws lambda invoke`. */
  invoke(functionName: string, event: unknown): Promise<InvokeResult>;
  /** An HTTPS request at a function URL of the template (`box.outputs.EventsEndpoint` + `?code=...`), as Lambda serves it. */
  request(url: string, request?: UrlRequest): Promise<UrlResponse>;
  /** Kill the containers of a function that are running an invocation now (a crash): how many were killed. */
  crash(functionName: string): number;
  /** An asynchronous invocation (`--invocation-type Event`); returns the request id. */
  invokeAsync(functionName: string, event: unknown): string;
  /** Resolves when every polled queue is empty, nothing runs and nothing waits for a retry. */
  idle(options?: IdleOptions): Promise<void>;
  stats(): Record<string, FunctionStats>;
  /** Every invocation so far (of one function), with its event and outcome, in the order they ended. */
  invocations(functionName?: string): InvocationRecord[];
  logs(functionName?: string): LogLine[];
  /** The log lines as text (the last `last` of them), for a failing test's message. */
  logText(functionName?: string, last?: number): string;
  /** Everything moto answered AccessDenied to, with user, action and resource. */
  readonly denials: readonly Denial[];
  /** What the box itself saw go wrong: undeliverable destinations, failed polls, invalid batch answers. */
  readonly problems: readonly string[];
  /** The template's secret's new value (an object is written as JSON). */
  putSecret(value: string | object, idOrName?: string): Promise<void>;
  /** Resources by status with notes, functions' stats, problems and denials. */
  report(): string;
  stop(): Promise<void>;
}

const HERE = dirname(fileURLToPath(import.meta.url));

/** The container's runtime as plain JavaScript (TypeScript's transpiler: no esbuild service left running). */
function buildRuntime(dir: string): string {
  const outfile = join(dir, 'runtime', 'bootstrap.mjs');
  const source = readFileSync(join(HERE, 'lambda', 'runtime.ts'), 'utf8');
  const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false } });
  mkdirSync(dirname(outfile), { recursive: true });
  writeFileSync(outfile, outputText);
  return outfile;
}

function adminClients(config: AwsConfig): AdminClients {
  return {
    config,
    s3: new S3Client({ ...config, forcePathStyle: true }),
    sqs: new SQSClient(config),
    sns: new SNSClient(config),
    secrets: new SecretsManagerClient(config),
    dynamodb: new DynamoDBClient(config),
    iam: new IAMClient(config),
    kms: (operation, input) => awsJsonCall(config, 'kms', `TrentService.${operation}`, input),
  };
}

export async function startBox(options: BoxOptions = {}): Promise<Box> {
  const started = Date.now();
  const workDir = mkdtempSync(join(tmpdir(), 'azs3copy-box-'));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(workDir, { recursive: true, force: true })];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c();
  };
  try {
    // moto starts (about 3 s) while the synth runs (it blocks the event loop).
    const region = options.assemblyDir ? readAssembly(options.assemblyDir).region : 'eu-west-1';
    const motoStarted = Date.now();
    const motoReady = startIamMoto(BOOTSTRAP_REQUESTS, region).then((m) => ({ moto: m, ms: Date.now() - motoStarted }));
    cleanups.push(async () => (await motoReady.catch(() => undefined))?.moto.stop());
    const synthStarted = Date.now();
    const assembly = options.assemblyDir ? readAssembly(options.assemblyDir) : synthesizeAssembly(options.context ?? {}, join(workDir, 'assembly'));
    const synthMs = Date.now() - synthStarted;
    const runtimeFile = buildRuntime(workDir);
    const { moto, ms: motoMs } = await motoReady;

    const bootstrapStarted = Date.now();
    const credentials = await bootstrapAdmin(moto.endpoint, assembly.region);
    const admin: AwsConfig = { endpoint: moto.endpoint, region: assembly.region, credentials };
    const clients = adminClients(admin);
    cleanups.push(() => Object.values(clients).forEach((c) => typeof c === 'object' && 'destroy' in c && (c as { destroy(): void }).destroy()));
    const bootstrapMs = Date.now() - bootstrapStarted;

    const deployStarted = Date.now();
    const existingBucket = options.context?.bucketName;
    if (typeof existingBucket === 'string' && existingBucket) await createBucket(clients.s3, existingBucket, assembly.region);
    // Further destinations are existing buckets too ("bucket/prefix", comma-separated).
    const more = options.context?.moreDestinations;
    if (typeof more === 'string') for (const d of more.split(',')) await createBucket(clients.s3, d.trim().split('/')[0], assembly.region);
    const deployment = await deploy(assembly, clients, { visibilityTimeoutSeconds: options.visibilityTimeoutSeconds });
    const echo = options.echo === true || (options.echo === undefined && process.env.BOX_ECHO)
      ? (line: LogLine) => process.stderr.write(`[${line.functionName}] ${line.text}\n`)
      : typeof options.echo === 'function' ? options.echo : undefined;
    const lambda = new LambdaService(
      { plan: deployment.plan, resources: deployment.resources, template: assembly.template, endpoint: moto.endpoint, region: assembly.region, admin, workDir, runtimeFile },
      {
        functionTimeoutSeconds: options.functionTimeoutSeconds,
        asyncRetryDelaysMs: options.asyncRetryDelaysMs,
        maxConcurrencyPerFunction: options.maxConcurrencyPerFunction ?? 4,
        duplicateRate: options.duplicateRate,
        accountConcurrency: options.accountConcurrency,
        environment: options.environment,
        echo,
      },
    );
    cleanups.push(() => lambda.stop());
    lambda.start();
    const deployMs = Date.now() - deployStarted;
    lambda.notes.push(...deployment.notes);
    const skipped = deployment.resources.filter((r) => r.status === 'skipped');
    if (skipped.length) {
      process.stderr.write(`the box skipped ${skipped.length} resource(s): ${skipped.map((r) => `${r.logicalId} (${r.type}: ${r.note})`).join('; ')}\n`);
    }
    return makeBox({
      assembly, moto, admin, clients, lambda, resources: deployment.resources, outputs: deployment.outputs, urls: deployment.plan.urls, cleanup,
      timings: { synthMs, motoMs, bootstrapMs, deployMs, totalMs: Date.now() - started },
    });
  } catch (error) {
    await cleanup();
    throw error;
  }
}

interface Parts {
  assembly: StackAssembly;
  moto: IamMoto;
  admin: AwsConfig;
  clients: AdminClients;
  lambda: LambdaService;
  resources: BoxResource[];
  outputs: Record<string, string>;
  urls: FunctionUrlSpec[];
  timings: BoxTimings;
  cleanup(): Promise<void>;
}

function makeBox({ assembly, moto, admin, clients, lambda, resources, outputs, urls, timings, cleanup }: Parts): Box {
  const find = (idOrName: string) =>
    resources.find((r) => r.logicalId === idOrName) ??
    resources.find((r) => r.name === idOrName || r.ref === idOrName || r.attrs.Arn === idOrName);
  let stopped: Promise<void> | undefined;
  const box: Box = {
    endpoint: moto.endpoint,
    region: assembly.region,
    account: assembly.account,
    admin,
    assembly,
    timings,
    resources,
    outputs,
    resource(idOrName) {
      const found = find(idOrName);
      if (!found) throw new Error(`no resource ${idOrName} in the box`);
      return found;
    },
    functionNames: () => [...lambda.functions.keys()],
    userArnOf: (functionName) => lambda.userArns.get(lambda.get(functionName).spec.name)!,
    configOf(functionName) {
      const env = lambda.get(functionName).spec.environment;
      return { endpoint: moto.endpoint, region: assembly.region, credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } };
    },
    s3: () => clients.s3,
    sqs: () => clients.sqs,
    sns: () => clients.sns,
    dynamodb: () => clients.dynamodb,
    secrets: () => clients.secrets,
    iam: () => clients.iam,
    async invoke(functionName, event) {
      const outcome = await lambda.get(functionName).invoke(JSON.parse(JSON.stringify(event ?? null)));
      return {
        StatusCode: 200,
        ...(outcome.ok ? {} : { FunctionError: 'Unhandled' as const }),
        Payload: outcome.ok ? outcome.payload : outcome.error,
        requestId: outcome.requestId,
        durationMs: outcome.durationMs,
        timedOut: outcome.timedOut,
      };
    },
    async request(url, request = {}) {
      const target = new URL(url);
      const spec = urls.find((u) => new URL(u.url).host === target.host);
      if (!spec) throw new Error(`no function URL ${target.origin} in the box (it has ${urls.map((u) => u.url).join(', ') || 'none'})`);
      if (spec.authType !== 'NONE') return { statusCode: 403, headers: {}, body: '{"Message":"Forbidden"}', json: { Message: 'Forbidden' } };
      const outcome = await lambda.get(spec.functionArn).invoke(functionUrlEvent(spec, target, request, assembly.account));
      return urlResponse(outcome.ok ? { ok: true, payload: outcome.payload } : { ok: false });
    },
    crash: (functionName) => lambda.get(functionName).crashBusy(),
    invokeAsync(functionName, event) {
      const fn = lambda.get(functionName);
      return lambda.invokers.get(fn.spec.name)!.enqueue(JSON.parse(JSON.stringify(event ?? null)));
    },
    idle: (idleOptions) => waitForIdle(lambda, clients.sqs, idleOptions, () => box.report()),
    stats: () => Object.fromEntries([...lambda.functions].map(([name, f]) => [name, { ...f.stats }])),
    invocations: (functionName) => lambda.history.filter((i) => !functionName || i.functionName === functionName),
    logs: (functionName) => lambda.logs.filter((l) => !functionName || l.functionName === functionName),
    logText: (functionName, last) => formatLogs(box.logs(functionName), last),
    denials: moto.denials,
    problems: lambda.problems,
    async putSecret(value, idOrName) {
      const secrets = idOrName ? [box.resource(idOrName)] : resources.filter((r) => r.type === 'AWS::SecretsManager::Secret');
      if (secrets.length !== 1) throw new Error(`the template has ${secrets.length} secrets: name the one to put`);
      const SecretString = typeof value === 'string' ? value : JSON.stringify(value);
      await clients.secrets.send(new PutSecretValueCommand({ SecretId: secrets[0].ref, SecretString }));
    },
    report: () => formatReport({ resources, stats: box.stats(), problems: lambda.problems, notes: lambda.notes, denials: moto.denials, timings }),
    stop() {
      stopped ??= cleanup();
      return stopped;
    },
  };
  return box;
}
