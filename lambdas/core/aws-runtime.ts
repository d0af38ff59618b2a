/**
 * The Runtime of a deployed function: configuration from Secrets Manager (cached
 * briefly, so an edit takes effect within a minute), messages to SNS, the run's
 * state in the stack's DynamoDB table, logs and metrics through Powertools.
 * Clients are created once per container.
 */
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { MetricUnit, Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishBatchCommand, PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { ChangeMessageVisibilityCommand, SQSClient } from '@aws-sdk/client-sqs';
import { createHash } from 'node:crypto';
import { mapLimit, packBySize } from './batching';
import { parseSecret, type CopyConfig } from './config';
import {
  DEFAULT_LARGE_BLOB_BYTES, DEFAULT_PART_BYTES, DEFAULT_STALL_AFTER_SECONDS, DEFAULT_TUNING, type Runtime,
} from './context';
import { invocationAttributes, invocationCounts, runIdsOf } from './cost/invocation-meter';
import { pricesNear } from './cost/prices';
import { countsFromAttributes, createMeter, meterClient, meteredSink, meteredSource, SNS_CHUNK_BYTES } from './cost/requests';
import { latestDryRun } from './cost/run-costs';
import { deadLetterWhereabouts } from './dead-letter-search';
import { ConfigError, errorMessage } from './errors';
import { ENV, numberFrom, required, topicEnv } from './env';
import type { SqsRecord } from './handler';
import { errorReplacer, redact, type Logger } from './log';
import { parseDestinations, type Destination } from './destinations';
import type { RunSettings, StageMessage } from './messages';
import { METRICS_NAMESPACE, METRICS_SERVICE, METRIC, PIPELINE_DIMENSION, metricsOfDelta, type MetricName } from './metrics';
import { endOfRun } from './run-end';
import { runLedger, type LedgerHooks, type RunLedger } from './run-ledger';
import { DEFAULT_TIMEOUT_MINUTES, stageOf } from './stages/specs';
import { dynamoTable } from './state/dynamo-table';
import { azureSource, listContainers } from './stores/azure-source';
import { s3Client, s3Sink } from './stores/s3-sink';
import type { BlobSource, ObjectSink } from './stores/types';

/** How long a warm function keeps the secret it read (AZS3COPY_CONFIG_TTL_SECONDS): an edit takes effect within it. */
const DEFAULT_CONFIG_TTL_SECONDS = 60;

/** Our Logger over Powertools' (JSON lines CloudWatch understands), every field passed through the redactor. */
export function powertoolsLogger(base: PowertoolsLogger): Logger {
  const clean = (fields: Record<string, unknown> | undefined) =>
    fields ? (JSON.parse(redact(JSON.stringify(fields, errorReplacer))) as Record<string, unknown>) : {};
  return {
    debug: (m, f) => base.debug(redact(m), clean(f)),
    info: (m, f) => base.info(redact(m), clean(f)),
    warn: (m, f) => base.warn(redact(m), clean(f)),
    error: (m, f) => base.error(redact(m), clean(f)),
    child: (fields) => powertoolsLogger(base.createChild({ persistentKeys: clean(fields) })),
  };
}

/** A short fingerprint of the credentials, so a rotated secret gets a new client (and never appears itself). */
function credentialsKey(config: CopyConfig): string {
  return createHash('sha256').update(JSON.stringify(config.source.credentials)).digest('hex').slice(0, 16);
}

export function awsRuntime(stage: string, env: NodeJS.ProcessEnv = process.env) {
  const pipeline = env[ENV.pipeline] ?? 'azs3copy';
  const log = powertoolsLogger(new PowertoolsLogger({ serviceName: 'azs3copy', persistentKeys: { stage, pipeline } }));
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: METRICS_SERVICE, defaultDimensions: { [PIPELINE_DIMENSION]: pipeline } });
  const secretArn = required(ENV.secretArn, env);
  const secrets = new SecretsManagerClient({});
  const sns = new SNSClient({});
  // Requests go to the client's endpoint (the region's, or AWS_ENDPOINT_URL), not to the host in a queue URL we make.
  const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
  const s3 = s3Client({});
  // Every request this function makes is counted (its stores by their wrappers, its own clients by a middleware)
  // and added to the run's item at the end of each invocation (cost/invocation-meter.ts).
  const meter = createMeter();
  let flushing = false;
  const paused = () => flushing;
  meterClient(secrets, meter, 'secretsmanager', { paused });
  meterClient(sns, meter, 'sns', { paused });
  meterClient(sqs, meter, 'sqs', { paused });
  let cached: { at: number; config: CopyConfig } | undefined;
  const configTtlMs = (env.AZS3COPY_CONFIG_TTL_SECONDS === undefined ? DEFAULT_CONFIG_TTL_SECONDS : Number(env.AZS3COPY_CONFIG_TTL_SECONDS)) * 1000;
  const sources = new Map<string, BlobSource>();
  const sinks = new Map<string, ObjectSink>();

  const metric = (name: MetricName, value: number) =>
    metrics.addMetric(name, name === METRIC.bytesCopied ? MetricUnit.Bytes : MetricUnit.Count, value);

  const loadConfig = async (): Promise<CopyConfig> => {
    if (cached && Date.now() - cached.at < configTtlMs) return cached.config;
    let text: string | undefined;
    try {
      text = (await secrets.send(new GetSecretValueCommand({ SecretId: secretArn }))).SecretString;
    } catch (error) {
      throw new ConfigError(`cannot read the secret ${secretArn} (${errorMessage(error)}): check it exists and this function may read it`);
    }
    const config = parseSecret(text ?? '', `the secret ${secretArn}`);
    cached = { at: Date.now(), config };
    return config;
  };

  const publish = async (messages: StageMessage[]) => {
    const byTopic = new Map<string, StageMessage[]>();
    for (const m of messages) {
      const arn = required(topicEnv(stageOf(m.kind)), env);
      byTopic.set(arn, [...(byTopic.get(arn) ?? []), m]);
    }
    for (const [TopicArn, group] of byTopic) {
      // PublishBatch takes 10 entries and 256 KiB in all; an initializer may send 10,000 parts, so several go at once.
      await mapLimit(packBySize(group, { maxItems: 10, maxBytes: 250 * 1024 }), 8, async (batch) => {
        for (const m of batch) {
          // SNS delivers each message into its stage's queue: one SQS request per 64 KB chunk.
          meter.add('sns', 'Messages');
          meter.add('sqs', 'SendMessage', Math.max(1, Math.ceil(Buffer.byteLength(JSON.stringify(m), 'utf8') / SNS_CHUNK_BYTES)));
        }
        const out = await sns.send(
          new PublishBatchCommand({
            TopicArn,
            PublishBatchRequestEntries: batch.map((m, i) => ({ Id: String(i), Message: JSON.stringify(m) })),
          }),
        );
        if (out.Failed && out.Failed.length > 0) {
          throw new Error(`SNS refused ${out.Failed.length} messages: ${out.Failed[0].Code} ${out.Failed[0].Message ?? ''}`);
        }
      });
    }
  };

  const clients = new Map<string, ReturnType<typeof s3Client>>();
  const sinkFor = (settings: RunSettings, destination?: Destination) => {
    const bucket = destination?.bucket ?? settings.bucket;
    const region = destination?.region;
    const id = `${bucket}@${region ?? ''}`;
    let sink = sinks.get(id);
    if (!sink) {
      // A destination in another region has a client of its own (S3 answers a request to the wrong region with a redirect).
      let client = s3;
      if (region && region !== env.AWS_REGION) {
        client = clients.get(region) ?? s3Client({ region });
        clients.set(region, client);
      }
      sink = meteredSink(s3Sink({ bucket }, client), meter);
      sinks.set(id, sink);
    }
    return sink;
  };

  const hooks: LedgerHooks = {
    onDelta: (_run, delta) => {
      for (const [name, value] of metricsOfDelta(delta)) metric(name, value);
    },
  };
  const dynamo = new DynamoDBClient({});
  meterClient(dynamo, meter, 'dynamodb', { paused });
  const ledger: RunLedger = runLedger(dynamoTable(required(ENV.runTable, env), dynamo, { region: env.AWS_REGION }), hooks);
  const memoryMiB = Number(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? 0) || 1024;
  /** The invocation under way (a container runs one at a time, as the meter assumes), and when it counted itself. */
  let current: { event: unknown; started: number; countedAt?: number } | undefined;
  /**
   * The invocation that ends a run counts itself (its Lambda request, its time so far, its message's receive
   * and delete) before the report is built, so the report holds it; the rest of its time is added at its end.
   */
  const countCurrent = () => {
    if (!current || current.countedAt !== undefined) return {};
    current.countedAt = Date.now();
    return invocationCounts(current.event, current.countedAt - current.started, memoryMiB, 0);
  };
  /** Add what this invocation counted so far to the run's item (at its end, or before a report is built). */
  const flushRequests = async (runId: string, extra = {}) => {
    flushing = true;
    try {
      await ledger.addRequests(runId, invocationAttributes(meter, extra));
    } catch (error) {
      log.warn('could not add the invocation\'s requests to the run', { error: errorMessage(error) });
    } finally {
      flushing = false;
    }
  };
  const operatorTopic = env[ENV.operatorTopic];
  const deadLetterQueues = env[ENV.deadLetterQueues];
  hooks.onEnd = endOfRun({
    ledger: () => ledger,
    stateFor: sinkFor,
    log,
    metric,
    costs: {
      mode: 'deployed',
      prices: () => pricesNear(env.AWS_REGION),
      actual: async (run) => {
        await flushRequests(run.runId, countCurrent());
        return countsFromAttributes((await ledger.getRun(run.runId)) as unknown as Record<string, unknown>);
      },
      plan: (run) => latestDryRun(ledger, sinkFor, run),
      blobsPerMessage: DEFAULT_TUNING.blobsPerMessage,
    },
    whereabouts: deadLetterQueues ? (runId) => deadLetterWhereabouts(sqs, JSON.parse(deadLetterQueues) as Record<string, string>, runId) : undefined,
    notify: operatorTopic
      ? async (subject, text) => {
          await sns.send(new PublishCommand({ TopicArn: operatorTopic, Subject: subject.slice(0, 99), Message: text }));
        }
      : undefined,
  });

  const runtime: Runtime = {
    loadConfig,
    defaults: {
      bucket: env[ENV.bucket],
      prefix: env[ENV.prefix] ?? '',
      largeBlobBytes: numberFrom(ENV.largeBlobBytes, DEFAULT_LARGE_BLOB_BYTES, env),
      partBytes: numberFrom(ENV.partBytes, DEFAULT_PART_BYTES, env),
      partTimeoutSeconds: numberFrom(ENV.partTimeoutSeconds, DEFAULT_TIMEOUT_MINUTES.parter * 60, env),
      also: env[ENV.also] ? parseDestinations(JSON.parse(env[ENV.also]!), `environment variable ${ENV.also}`) : undefined,
    },
    pipeline,
    owner: 'pipeline',
    stallAfterSeconds: numberFrom(ENV.stallAfterSeconds, DEFAULT_STALL_AFTER_SECONDS, env),
    async sourceFor(settings: RunSettings) {
      const config = await loadConfig();
      // The credentials are part of the key: a rotated secret must not keep a warm function on the old ones.
      const id = `${settings.account}/${settings.container}/${settings.blobEndpoint ?? ''}/${credentialsKey(config)}`;
      let source = sources.get(id);
      if (!source) {
        source = meteredSource(azureSource(
          { ...config.source, account: settings.account, container: settings.container, blobEndpoint: settings.blobEndpoint },
          { onWarning: (m) => log.warn(m) },
        ), meter);
        sources.set(id, source);
      }
      return source;
    },
    async listContainers(settings: RunSettings) {
      const config = await loadConfig();
      meter.add('azure', 'ListContainers');
      return listContainers({ ...config.source, account: settings.account, blobEndpoint: settings.blobEndpoint });
    },
    sinkFor,
    publish,
    ledger,
    log,
    tuning: { ...DEFAULT_TUNING, downloadConcurrency: numberFrom(ENV.downloadConcurrency, DEFAULT_TUNING.downloadConcurrency, env) },
    remainingMs: () => Number.POSITIVE_INFINITY,
    metric,
  };

  /**
   * Put off a failed SQS record's next try by making it invisible for a while. The queue's URL is made from
   * its ARN (SQS takes the https://sqs.REGION.amazonaws.com/ACCOUNT/NAME form everywhere): no GetQueueUrl call.
   */
  const retryLater = async (record: SqsRecord, delaySeconds: number) => {
    const arn = record.eventSourceARN;
    if (!arn) return;
    const [, , , region, account, name] = arn.split(':');
    const url = `https://sqs.${region}.amazonaws.com/${account}/${name}`;
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: record.receiptHandle, VisibilityTimeout: delaySeconds }));
  };

  /**
   * Wrap a handler so that at the end of every invocation, success or not, its metrics are flushed and its
   * requests added to its run.
   */
  const flushingMetrics = <A extends unknown[], R>(handler: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    const started = Date.now();
    current = { event: args[0], started };
    let result: R | undefined;
    try {
      result = await handler(...args);
      return result;
    } finally {
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
      const failed = (result as { batchItemFailures?: unknown[] } | undefined)?.batchItemFailures?.length ?? (result === undefined ? 1 : 0);
      const [runId] = runIdsOf(args[0], result);
      const countedAt = current?.countedAt;
      current = undefined;
      // Counted already (it ended a run): only the time since then.
      const counts = countedAt === undefined
        ? invocationCounts(args[0], Date.now() - started, memoryMiB, failed)
        : { lambda: { GBSeconds: ((Date.now() - countedAt) / 1000) * (memoryMiB / 1024) } };
      if (runId) await flushRequests(runId, counts);
      else meter.take();
    }
  };

  return { runtime, retryLater, flushingMetrics, log };
}
