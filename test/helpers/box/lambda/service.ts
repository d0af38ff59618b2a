/**
 * The box's Lambda: every function of the template with its containers, its
 * asynchronous invocation queue and destinations, and its event sources (SQS
 * mappings, SNS subscriptions), built from what the deployment collected.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { AwsConfig } from '../iam';
import type { BoxResource } from '../provision';
import type { LambdaPlan } from '../resources/types';
import { AsyncInvoker, DEFAULT_ASYNC_CONFIG, type Deliver } from './async';
import { LambdaFunction, type InvocationRecord, type LogLine } from './function';
import { SnsToLambda, SqsEventSource } from './sources';
import { lambdaEnvironment, prepareTaskRoot } from './task-root';

export interface LambdaServiceOptions {
  /** Each function's timeout in seconds instead of the template's, for all functions or by function name. */
  functionTimeoutSeconds?: number | Record<string, number>;
  /** Waits before an asynchronous invocation's retries. @default Lambda's, one then two minutes */
  asyncRetryDelaysMs?: readonly number[];
  /** At most this many containers of one function at once (this machine's cap, below reserved concurrency). */
  maxConcurrencyPerFunction: number;
  /** The account's concurrent executions quota, which reserved concurrency is carved from. @default 1000 */
  accountConcurrency?: number;
  /** Share of SNS notifications to a function delivered twice. @default 0 */
  duplicateRate?: number;
  /** Variables every function gets besides the template's (a test's settings, such as shorter retry delays). */
  environment?: Record<string, string>;
  echo?: (line: LogLine) => void;
}

interface Wiring {
  plan: LambdaPlan;
  resources: BoxResource[];
  /** The template as synthesized (for values the box replaced, such as a queue's visibility timeout). */
  template: Record<string, any>;
  endpoint: string;
  region: string;
  admin: AwsConfig;
  workDir: string;
  runtimeFile: string;
}

export class LambdaService {
  readonly functions = new Map<string, LambdaFunction>();
  readonly invokers = new Map<string, AsyncInvoker>();
  readonly sources: (SqsEventSource | SnsToLambda)[] = [];
  readonly logs: LogLine[] = [];
  readonly history: InvocationRecord[] = [];
  /** The ARN of the IAM user standing in for each function's role, by function name. */
  readonly userArns = new Map<string, string>();
  readonly problems: string[] = [];
  readonly notes: string[] = [];
  private readonly byArn = new Map<string, LambdaFunction>();
  private readonly clients = new Map<string, { sqs: SQSClient; sns: SNSClient }>();

  constructor(
    private readonly wiring: Wiring,
    private readonly options: LambdaServiceOptions,
  ) {
    const { plan } = wiring;
    for (const f of plan.functions) this.addFunction(f);
    this.checkReservedConcurrency();
    for (const c of plan.invokeConfigs) this.configureAsync(c.logicalId, c.props);
    for (const m of plan.mappings) this.addMapping(m);
    for (const s of plan.snsLambda) {
      const fn = this.get(s.functionArn);
      const spec = { ...s, duplicateRate: options.duplicateRate };
      this.sources.push(new SnsToLambda(spec, this.invokers.get(fn.spec.name)!, this.adminSqs(), (t) => this.problem(t)));
    }
  }

  start(): void {
    for (const source of this.sources) source.start();
  }

  /** A function by name or ARN (with or without a qualifier). */
  get(nameOrArn: string): LambdaFunction {
    const fn = this.functions.get(nameOrArn) ?? this.byArn.get(nameOrArn.replace(/:(\$LATEST|\d+)$/, ''));
    if (!fn) throw new Error(`no function ${nameOrArn} in the box (it has ${[...this.functions.keys()].join(', ')})`);
    return fn;
  }

  /** Something running, queued, waiting for a retry, or held by a poller. */
  get busy(): boolean {
    return [...this.functions.values()].some((f) => f.busy > 0) || [...this.invokers.values()].some((i) => i.pending > 0) || this.sources.some((s) => s.busy);
  }

  async stop(): Promise<void> {
    for (const invoker of this.invokers.values()) invoker.stop();
    await Promise.all(this.sources.map((s) => s.stop()));
    await Promise.all([...this.functions.values()].map((f) => f.stop()));
    for (const c of this.clients.values()) (c.sqs.destroy(), c.sns.destroy());
    this.adminSqsClient?.destroy();
  }

  private problem(text: string): void {
    this.problems.push(text);
    this.logs.push({ functionName: '(box)', stream: 'platform', text, at: new Date() });
  }

  private addFunction(f: LambdaPlan['functions'][number]): void {
    const { plan, region, endpoint, workDir, runtimeFile } = this.wiring;
    const roleArn = String(f.props.Role);
    const user = plan.roleUsers.get(roleArn);
    if (!user) throw new Error(`${f.logicalId}: its role ${roleArn} is not a role of this template; the box cannot give it credentials`);
    const layerDirs = ((f.props.Layers ?? []) as string[]).map((arn) => {
      const dir = plan.layers.get(arn);
      if (!dir) throw new Error(`${f.logicalId}: layer ${arn} is not a layer of this template`);
      return dir;
    });
    const root = join(workDir, 'functions', f.name);
    mkdirSync(root, { recursive: true });
    const { taskRoot, notes } = prepareTaskRoot(root, f.codeDir, layerDirs);
    this.notes.push(...notes.map((n) => `${f.name}: ${n}`));
    const templateSeconds = Number(f.props.Timeout ?? 3);
    const scaled = this.options.functionTimeoutSeconds;
    const timeoutSeconds = typeof scaled === 'number' ? scaled : (scaled?.[f.name] ?? templateSeconds);
    const memoryMiB = Number(f.props.MemorySize ?? 128);
    const handler = String(f.props.Handler ?? 'index.handler');
    const logGroupName = String(f.props.LoggingConfig?.LogGroup ?? `/aws/lambda/${f.name}`);
    const environment = lambdaEnvironment({
      templateVariables: {
        ...Object.fromEntries(Object.entries((f.props.Environment?.Variables ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)])),
        ...this.options.environment,
      },
      functionName: f.name,
      handler,
      runtime: String(f.props.Runtime),
      memoryMiB,
      region,
      taskRoot,
      runtimeDir: join(runtimeFile, '..'),
      logGroupName,
      credentials: user.credentials,
      endpoint,
    });
    const reserved = f.props.ReservedConcurrentExecutions === undefined ? undefined : Number(f.props.ReservedConcurrentExecutions);
    const fn = new LambdaFunction(
      { logicalId: f.logicalId, name: f.name, arn: f.arn, handler, runtime: String(f.props.Runtime), taskRoot, environment, timeoutMs: timeoutSeconds * 1000, memoryMiB, reservedConcurrency: reserved, logGroupName },
      runtimeFile,
      this.logs,
      this.history,
      this.options.maxConcurrencyPerFunction,
      this.options.echo,
    );
    this.functions.set(f.name, fn);
    this.byArn.set(f.arn, fn);
    this.userArns.set(f.name, user.arn);
    const invoker = new AsyncInvoker(fn, this.deliver, this.options.asyncRetryDelaysMs ?? [60_000, 120_000], (t) => this.problem(t));
    if (f.props.DeadLetterConfig?.TargetArn) invoker.config.deadLetterTarget = String(f.props.DeadLetterConfig.TargetArn);
    this.invokers.set(f.name, invoker);
  }

  private configureAsync(logicalId: string, props: Record<string, any>): void {
    const fn = this.get(String(props.FunctionName));
    if (props.Qualifier && props.Qualifier !== '$LATEST') this.notes.push(`${logicalId}: qualifier ${props.Qualifier} treated as $LATEST`);
    const invoker = this.invokers.get(fn.spec.name)!;
    invoker.config = {
      ...invoker.config,
      maximumRetryAttempts: Number(props.MaximumRetryAttempts ?? DEFAULT_ASYNC_CONFIG.maximumRetryAttempts),
      maximumEventAgeSeconds: Number(props.MaximumEventAgeInSeconds ?? DEFAULT_ASYNC_CONFIG.maximumEventAgeSeconds),
      onSuccess: props.DestinationConfig?.OnSuccess?.Destination,
      onFailure: props.DestinationConfig?.OnFailure?.Destination,
    };
  }

  private addMapping(m: LambdaPlan['mappings'][number]): void {
    const { props } = m;
    if (props.Enabled === false || props.Enabled === 'false') {
      this.notes.push(`${m.logicalId}: disabled in the template, not polled`);
      return;
    }
    const fn = this.get(String(props.FunctionName));
    const queueArn = String(props.EventSourceArn);
    const queue = this.wiring.resources.find((r) => r.attrs.Arn === queueArn && r.type === 'AWS::SQS::Queue');
    if (!queue?.ref) throw new Error(`${m.logicalId}: ${queueArn} is not a queue of this template`);
    this.checkMapping(m.logicalId, props, queue.logicalId, fn);
    const source = new SqsEventSource(
      {
        logicalId: m.logicalId,
        uuid: m.uuid,
        queueArn,
        queueUrl: queue.ref,
        batchSize: Number(props.BatchSize ?? 10),
        batchingWindowMs: Number(props.MaximumBatchingWindowInSeconds ?? 0) * 1000,
        maximumConcurrency: props.ScalingConfig?.MaximumConcurrency === undefined ? undefined : Number(props.ScalingConfig.MaximumConcurrency),
        reportBatchItemFailures: ((props.FunctionResponseTypes ?? []) as string[]).includes('ReportBatchItemFailures'),
        region: this.wiring.region,
      },
      fn,
      this.clientsOf(fn).sqs,
      (t) => this.problem(t),
    );
    this.sources.push(source);
  }

  /** Lambda keeps at least 100 of the account's concurrency unreserved; a template reserving more fails to deploy. */
  private checkReservedConcurrency(): void {
    const quota = this.options.accountConcurrency ?? 1000;
    const reserved = [...this.functions.values()].reduce((n, f) => n + (f.spec.reservedConcurrency ?? 0), 0);
    if (reserved > quota - 100) {
      throw new Error(
        `the deployment would fail: the functions reserve ${reserved} concurrent executions, and an account with a quota of ${quota} can reserve at most ${quota - 100} (Lambda keeps 100 unreserved)`,
      );
    }
  }

  /** What CloudFormation (Lambda's CreateEventSourceMapping) refuses, refused here too; what AWS advises against, noted. */
  private checkMapping(logicalId: string, props: Record<string, any>, queueId: string, fn: LambdaFunction): void {
    const visibility = Number(this.wiring.template.Resources[queueId]?.Properties?.VisibilityTimeout ?? 30);
    const timeout = Number(this.wiring.plan.functions.find((f) => f.name === fn.spec.name)?.props.Timeout ?? 3);
    if (visibility < timeout) {
      throw new Error(
        `${logicalId}: the deployment would fail: Queue visibility timeout: ${visibility} seconds is less than Function timeout: ${timeout} seconds (${queueId} feeds ${fn.spec.name})`,
      );
    }
    if (visibility < 6 * timeout) this.notes.push(`${logicalId}: ${queueId}'s visibility timeout (${visibility} s) is under the 6 x ${timeout} s AWS advises for ${fn.spec.name}`);
    const maximum = props.ScalingConfig?.MaximumConcurrency;
    if (maximum !== undefined && !(Number(maximum) >= 2 && Number(maximum) <= 1000)) {
      throw new Error(`${logicalId}: the deployment would fail: ScalingConfig.MaximumConcurrency is ${maximum}, not from 2 to 1000`);
    }
    if (Number(props.BatchSize ?? 10) > 10 && !(Number(props.MaximumBatchingWindowInSeconds ?? 0) >= 1)) {
      throw new Error(`${logicalId}: the deployment would fail: a BatchSize over 10 needs MaximumBatchingWindowInSeconds of at least 1`);
    }
  }

  /** A function's role reaches the destination: an SQS queue, an SNS topic or another function. */
  private readonly deliver: Deliver = async (from, target, body, attributes) => {
    const service = target.split(':')[2];
    const messageAttributes = attributes && Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, { DataType: 'String', StringValue: v }]));
    if (service === 'sqs') {
      const clients = this.clientsOf(from);
      const known = this.wiring.resources.find((r) => r.type === 'AWS::SQS::Queue' && r.attrs.Arn === target)?.ref;
      const url = known ?? (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: target.split(':')[5] }))).QueueUrl!;
      await clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, MessageAttributes: messageAttributes }));
    } else if (service === 'sns') {
      await this.clientsOf(from).sns.send(new PublishCommand({ TopicArn: target, Message: body, MessageAttributes: messageAttributes }));
    } else if (service === 'lambda') {
      this.invokers.get(this.get(target).spec.name)!.enqueue(JSON.parse(body));
    } else {
      throw new Error(`destination ${target} is not one the box can deliver to (SQS, SNS, Lambda)`);
    }
  };

  /** Clients signed as the function's role, for what Lambda does on its behalf (polling, destinations). */
  private clientsOf(fn: LambdaFunction): { sqs: SQSClient; sns: SNSClient } {
    let clients = this.clients.get(fn.spec.name);
    if (!clients) {
      const config = {
        endpoint: this.wiring.endpoint,
        region: this.wiring.region,
        credentials: { accessKeyId: fn.spec.environment.AWS_ACCESS_KEY_ID, secretAccessKey: fn.spec.environment.AWS_SECRET_ACCESS_KEY },
      };
      clients = { sqs: new SQSClient(config), sns: new SNSClient(config) };
      this.clients.set(fn.spec.name, clients);
    }
    return clients;
  }

  private adminSqsClient: SQSClient | undefined;

  private adminSqs(): SQSClient {
    this.adminSqsClient ??= new SQSClient(this.wiring.admin);
    return this.adminSqsClient;
  }
}
