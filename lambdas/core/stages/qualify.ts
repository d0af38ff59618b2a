/**
 * Stage 1: decide whether a run starts, fix its settings, and start the listing.
 */
import { randomBytes } from 'node:crypto';
import { SwitchedOffError, checkPrefix } from '../config';
import type { Runtime } from '../context';
import { ConfigError } from '../errors';
import { MESSAGE_VERSION, type ListPageMessage, type RunSettings } from '../messages';

export type QualifyResult =
  | { started: true; runId: string; settings: RunSettings }
  | { started: false; reason: string };

export function newRunId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

export async function qualify(runtime: Runtime, options: { runId?: string } = {}): Promise<QualifyResult> {
  let config;
  try {
    config = await runtime.loadConfig();
  } catch (error) {
    if (!(error instanceof SwitchedOffError)) throw error;
    const reason = `the copy is switched off ("isactive" is false in the configuration); the rest of it is not ready yet either: ${error.message}`;
    runtime.log.info('run not started', { reason });
    return { started: false, reason };
  }
  if (!config.isActive) {
    const reason = 'the copy is switched off ("isactive" is false in the configuration)';
    runtime.log.info('run not started', { reason });
    return { started: false, reason };
  }
  const bucket = config.bucket ?? runtime.defaults.bucket;
  if (!bucket) throw new ConfigError('no destination bucket: set "bucket" in the secret, or deploy with a bucket');
  const prefix = config.prefix ?? runtime.defaults.prefix;
  checkPrefix(prefix, 'the destination prefix');
  const settings: RunSettings = {
    account: config.source.account,
    container: config.source.container,
    blobEndpoint: config.source.blobEndpoint,
    bucket,
    prefix,
    beginDate: config.beginDate,
    largeBlobBytes: runtime.defaults.largeBlobBytes,
    partBytes: runtime.defaults.partBytes,
  };
  const runId = options.runId ?? newRunId();
  const log = runtime.log.child({ runId, stage: 'qualify' });
  // Fail the run at its start, with one clear line, rather than in every blob.
  const source = await runtime.sourceFor(settings);
  await source.check();
  await runtime.sinkFor(settings).check();
  const first: ListPageMessage = { v: MESSAGE_VERSION, kind: 'list-page', runId, run: settings, invocation: 0 };
  await runtime.publish([first]);
  log.info('run started', { container: settings.container, account: settings.account, bucket, prefix, beginDate: settings.beginDate });
  return { started: true, runId, settings };
}
