/**
 * The Runtime of a deployed function: configuration from Secrets Manager (cached
 * briefly, so an edit takes effect within a minute), messages to SNS, outcomes to
 * logs and embedded metrics. Clients are created once per container.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishBatchCommand, SNSClient } from '@aws-sdk/client-sns';
import { mapLimit, packBySize } from './batching';
import { parseSecret, type CopyConfig } from './config';
import {
  DEFAULT_LARGE_BLOB_BYTES, DEFAULT_PART_BYTES, DEFAULT_TUNING, type Runtime,
} from './context';
import { ConfigError, errorMessage } from './errors';
import { ENV, numberFrom, required, topicEnv } from './env';
import type { Ledger, Outcome } from './ledger';
import { createLogger, type Logger } from './log';
import type { RunSettings, StageMessage } from './messages';
import { METRIC, emfRecord, metricDimensions } from './metrics';
import { stageOf } from './stages';
import { azureSource } from './stores/azure-source';
import { s3Client, s3Sink } from './stores/s3-sink';
import type { BlobSource, ObjectSink } from './stores/types';

const CONFIG_TTL_MS = 60_000;

export function awsRuntime(stage: string, env: NodeJS.ProcessEnv = process.env): Runtime {
  const log = createLogger({ stage });
  const dimensions = metricDimensions(env[ENV.pipeline] ?? 'azs3copy');
  const secretArn = required(ENV.secretArn, env);
  const secrets = new SecretsManagerClient({});
  const sns = new SNSClient({});
  const s3 = s3Client({});
  let cached: { at: number; config: CopyConfig } | undefined;
  const sources = new Map<string, BlobSource>();
  const sinks = new Map<string, ObjectSink>();

  const loadConfig = async (): Promise<CopyConfig> => {
    if (cached && Date.now() - cached.at < CONFIG_TTL_MS) return cached.config;
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

  return {
    loadConfig,
    defaults: {
      bucket: env[ENV.bucket],
      prefix: env[ENV.prefix] ?? '',
      largeBlobBytes: numberFrom(ENV.largeBlobBytes, DEFAULT_LARGE_BLOB_BYTES, env),
      partBytes: numberFrom(ENV.partBytes, DEFAULT_PART_BYTES, env),
    },
    async sourceFor(settings: RunSettings) {
      const config = await loadConfig();
      const id = `${settings.account}/${settings.container}/${settings.blobEndpoint ?? ''}/${config.source.credentials.kind}`;
      let source = sources.get(id);
      if (!source) {
        source = azureSource(
          { ...config.source, account: settings.account, container: settings.container, blobEndpoint: settings.blobEndpoint },
          { onWarning: (m) => log.warn(m) },
        );
        sources.set(id, source);
      }
      return source;
    },
    sinkFor(settings: RunSettings) {
      let sink = sinks.get(settings.bucket);
      if (!sink) {
        sink = s3Sink({ bucket: settings.bucket }, s3);
        sinks.set(settings.bucket, sink);
      }
      return sink;
    },
    publish,
    ledger: metricsLedger(log, dimensions),
    metricDimensions: dimensions,
    log,
    tuning: { ...DEFAULT_TUNING, downloadConcurrency: numberFrom(ENV.downloadConcurrency, DEFAULT_TUNING.downloadConcurrency, env) },
    remainingMs: () => Number.POSITIVE_INFINITY,
  };
}

/** Outcomes as log lines that carry embedded metrics; the dashboard and Logs Insights read them. */
export function metricsLedger(log: Logger, dimensions: Record<string, string>): Ledger {
  const metricOf: Record<Outcome['status'], string> = {
    copied: METRIC.objectsCopied, skipped: METRIC.blobsSkipped, failed: METRIC.blobsFailed,
  };
  return {
    async record(runId, outcome) {
      const metrics = { [metricOf[outcome.status]]: 1, ...(outcome.status === 'copied' ? { [METRIC.bytesCopied]: outcome.bytes } : {}) };
      const line = outcome.status === 'failed' ? log.error : log.info;
      line(`blob ${outcome.status}`, { runId, outcome: outcome.status, ...outcome, ...emfRecord(metrics, dimensions) });
    },
    async listed(runId, progress) {
      log.info('listing progress', {
        runId, ...progress,
        ...emfRecord({ [METRIC.blobsListed]: progress.listed, [METRIC.blobsUnchanged]: progress.unchanged }, dimensions),
      });
    },
  };
}
