/**
 * `azs3copy status` and `azs3copy runs`: how far along a run is, and which runs
 * there were, read from the runs' state wherever it is. Every run leaves a pointer
 * in its bucket, `.azs3copy-state/runs/<runId>/state.json`, saying where its state
 * is kept (the bucket itself for a local run, the stack's DynamoDB table for a
 * deployed one), so `--bucket` finds both; `--stack` reads the deployed stack's
 * outputs for its table and bucket.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { checkBucketName } from '../core/config';
import { ConfigError, errorMessage } from '../core/errors';
import { STATE_PREFIX } from '../core/keys';
import { runPointerKey, type RunPointer } from '../core/run-pointer';
import { runLedger, type RunLedger, type RunRecord } from '../core/run-ledger';
import { bucketTable } from '../core/state/bucket-table';
import { dynamoTable } from '../core/state/dynamo-table';
import type { StateLocation } from '../core/state/table';
import { runLine, runStatus, statusText } from '../core/status';
import { explainBucketError, s3Client, s3Sink } from '../core/stores/s3-sink';
import { explainAwsError } from './aws-errors';
import { str, type CliValues } from './commands';

const RUNS_PREFIX = `${STATE_PREFIX}runs/`;

/** Where to look, from the flags. */
interface Target {
  /** Runs newest first, at most `limit`, as (a reader for the run) pairs. */
  runs(limit: number, prefix?: string): Promise<{ run: RunRecord; ledger: RunLedger }[]>;
  run(runId: string): Promise<{ run: RunRecord; ledger: RunLedger } | undefined>;
  describe: string;
}

export async function statusCommand(values: CliValues, env: NodeJS.ProcessEnv): Promise<number> {
  const target = await targetOf(values, env);
  const runId = str(values, 'run-id');
  const found = runId ? await target.run(runId) : (await target.runs(1, prefixOf(values)))[0];
  if (!found) {
    throw new ConfigError(runId ? `no run ${runId} in ${target.describe}: check the run id (azs3copy runs lists them)` : `no runs in ${target.describe} yet`);
  }
  const status = await runStatus(found.ledger, found.run);
  process.stdout.write(values.json ? JSON.stringify(status, null, 2) + '\n' : statusText(status));
  return 0;
}

export async function runsCommand(values: CliValues, env: NodeJS.ProcessEnv): Promise<number> {
  const target = await targetOf(values, env);
  const runs = await target.runs(Number(str(values, 'limit') ?? 20), prefixOf(values));
  if (values.json) {
    process.stdout.write(JSON.stringify(runs.map(({ run }) => run), null, 2) + '\n');
    return 0;
  }
  if (runs.length === 0) process.stdout.write(`no runs in ${target.describe} yet\n`);
  for (const { run } of runs) process.stdout.write(runLine(run) + '\n');
  return 0;
}

function prefixOf(values: CliValues): string | undefined {
  return typeof values.prefix === 'string' ? values.prefix : undefined;
}

async function targetOf(values: CliValues, env: NodeJS.ProcessEnv): Promise<Target> {
  const stack = str(values, 'stack');
  const bucket = str(values, 'bucket');
  if (stack && bucket) throw new ConfigError('--stack and --bucket both say where the runs are: give one of them');
  if (stack) return stackTarget(stack, env);
  if (!bucket) throw new ConfigError('--bucket or --stack is missing: name the destination bucket, or the deployed stack (e.g. etl-azs3copy)');
  checkBucketName(bucket, '--bucket');
  const endpoint = str(values, 's3-endpoint');
  if (endpoint && !URL.canParse(endpoint)) throw new ConfigError(`--s3-endpoint "${endpoint}" is not a URL: give one like http://127.0.0.1:9000`);
  return bucketTarget(s3Client({ endpoint }), bucket, endpoint, env);
}

/** A reader of the state a pointer names. */
function readerFor(location: StateLocation, client: S3Client, bucket: string, env: NodeJS.ProcessEnv): RunLedger {
  if (location.kind === 'dynamodb') {
    // The table's region as the pipeline wrote it; an endpoint, as for any AWS call, from AWS_ENDPOINT_URL.
    const region = location.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
    return runLedger(dynamoTable(location.table, new DynamoDBClient({ region }), { region }));
  }
  return runLedger(bucketTable(client, location.kind === 'bucket' ? location.bucket : bucket));
}

function bucketTarget(client: S3Client, bucket: string, endpoint: string | undefined, env: NodeJS.ProcessEnv): Target {
  const sink = s3Sink({ bucket, endpoint }, client);
  const readers = new Map<string, RunLedger>();
  const open = async (runId: string) => {
    const pointer = await sink.getJson<RunPointer>(runPointerKey(runId)).catch((error: unknown) => {
      throw explainReadError(error, bucket);
    });
    if (!pointer) return undefined;
    const id = JSON.stringify(pointer.state);
    let ledger = readers.get(id);
    if (!ledger) readers.set(id, (ledger = readerFor(pointer.state, client, bucket, env)));
    const run = await ledger.getRun(runId);
    return run ? { run, ledger } : undefined;
  };
  return {
    describe: `s3://${bucket}/${RUNS_PREFIX}`,
    run: open,
    async runs(limit, prefix) {
      const found: { run: RunRecord; ledger: RunLedger }[] = [];
      for (const runId of (await runIdsIn(client, bucket)).reverse()) {
        const opened = await open(runId);
        if (!opened || (prefix !== undefined && opened.run.settings.prefix !== prefix)) continue;
        found.push(opened);
        if (found.length >= limit) break;
      }
      return found;
    },
  };
}

/** Every run id with a pointer in the bucket, oldest first (run ids begin with their start time). */
async function runIdsIn(client: S3Client, bucket: string): Promise<string[]> {
  const ids: string[] = [];
  let token: string | undefined;
  do {
    const out = await client
      .send(new ListObjectsV2Command({ Bucket: bucket, Prefix: RUNS_PREFIX, Delimiter: '/', ContinuationToken: token }))
      .catch((error: unknown) => {
        throw explainReadError(error, bucket);
      });
    for (const p of out.CommonPrefixes ?? []) ids.push(p.Prefix!.slice(RUNS_PREFIX.length, -1));
    token = out.NextContinuationToken;
  } while (token);
  return ids.sort();
}

async function stackTarget(stackName: string, env: NodeJS.ProcessEnv): Promise<Target> {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  let outputs: Record<string, string>;
  try {
    const out = await new CloudFormationClient({ region }).send(new DescribeStacksCommand({ StackName: stackName }));
    outputs = Object.fromEntries((out.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey!, o.OutputValue!]));
  } catch (error) {
    if (/does not exist/.test(errorMessage(error))) throw new ConfigError(`stack ${stackName} does not exist in ${region ?? 'this region'}: check the name (e.g. etl-azs3copy) and AWS_REGION`);
    throw explainAwsError(error, `read stack ${stackName}`, 'cloudformation:DescribeStacks');
  }
  const table = outputs.RunTable;
  if (!table) throw new ConfigError(`stack ${stackName} has no RunTable output: it is not an azs3copy stack, or one deployed before run state existed (deploy again)`);
  const ledger = runLedger(dynamoTable(table, new DynamoDBClient({ region }), { region }));
  const wrap = async <T>(fn: () => Promise<T>) => fn().catch((error: unknown) => {
    throw explainAwsError(error, `read the run table ${table}`, 'dynamodb:GetItem and dynamodb:Query');
  });
  return {
    describe: `the run table ${table} of stack ${stackName}`,
    run: (runId) => wrap(async () => {
      const run = await ledger.getRun(runId);
      return run ? { run, ledger } : undefined;
    }),
    runs: (limit, prefix) => wrap(async () => {
      const all = await ledger.recentRuns(prefix === undefined ? limit : 1000);
      return all.filter((run) => prefix === undefined || run.settings.prefix === prefix).slice(0, limit).map((run) => ({ run, ledger }));
    }),
  };
}

function explainReadError(error: unknown, bucket: string): unknown {
  const explained = explainBucketError(error, bucket);
  if (explained instanceof ConfigError && /denied/.test(explained.message)) {
    return new ConfigError(`access to S3 bucket "${bucket}" is denied: reading runs needs s3:ListBucket and s3:GetObject on ${RUNS_PREFIX}* and ${STATE_PREFIX}state/*`);
  }
  return explained;
}

