/**
 * `azs3copy redrive`, locally: send the dead letters of earlier runs back to their
 * stages, through the same bus and handlers a copy uses. Each message carries its
 * run's settings, so its work is done exactly as the first attempt would have done
 * it; the stages are idempotent, so a letter whose work was done meanwhile does no
 * harm. The letters' outcomes go into their own runs' state: a run whose every
 * blob now has an outcome ends complete, with its report renewed. Letters that fail
 * again are kept under the redrive's own id, and the files they came from are removed.
 */
import { ConfigError } from '../core/errors';
import { parseStageMessage } from '../core/messages';
import { deadLettersFromFile, deadLettersInBucket, DEAD_LETTER_PREFIX, type DeadLetterFile } from './dead-letters';
import { emptyReport, finishLocalRun, localPipeline, type LocalCopyOptions, type LocalRunResult } from './pipeline';

export interface LocalRedriveOptions extends LocalCopyOptions {
  /** Send only this run's dead letters; every run's kept in the bucket when absent. */
  fromRun?: string;
  /** Read the dead letters from this local file instead of the bucket. */
  file?: string;
}

export interface LocalRedriveResult extends LocalRunResult {
  /** Dead letters sent again. */
  redriven: number;
}

export async function runLocalRedrive(options: LocalRedriveOptions): Promise<LocalRedriveResult> {
  const pipeline = localPipeline(options);
  await pipeline.sink.check();
  const kept: { key?: string; file: DeadLetterFile }[] = options.file
    ? [{ file: deadLettersFromFile(options.file) }]
    : await deadLettersInBucket(pipeline.sink, options.fromRun);
  const letters = kept.flatMap((k) => k.file.letters);
  if (letters.length === 0) {
    const where = options.file ?? `s3://${options.bucket}/${DEAD_LETTER_PREFIX}`;
    return {
      report: emptyReport(pipeline),
      deadLetters: [], bus: pipeline.bus.stats, started: false, reason: `no dead letters are kept in ${where}`, redriven: 0,
    };
  }
  // Refuse before sending anything: letters of another bucket or container would be redriven against the wrong stores.
  const named = options.selection?.containers ?? [options.source.container];
  const containers = new Set<string>();
  for (const letter of letters) {
    const message = tryParse(letter.body);
    if (message && message.run.bucket !== options.bucket) {
      throw new ConfigError(`the dead letters are of bucket "${message.run.bucket}", not "${options.bucket}": give --bucket ${message.run.bucket}`);
    }
    if (message && named !== 'all' && !named.includes(message.run.container)) {
      throw new ConfigError(`the dead letters are of container "${message.run.container}", not ${named.map((n) => `"${n}"`).join(', ')}: give --container ${message.run.container}`);
    }
    if (message) containers.add(message.run.container);
  }
  for (const container of containers) await pipeline.sourceOf(container).check();

  // The letters' own runs are carried on: their outcomes go into those runs' state, which end when complete.
  const runIds = [...new Set(letters.map((l) => tryParse(l.body)?.runId).filter((id): id is string => id !== undefined))];
  pipeline.started(runIds[0] ?? pipeline.runId);
  for (const letter of letters) {
    const message = tryParse(letter.body);
    // An unreadable letter goes back as it is: its stage refuses it again, and it is kept again, not dropped.
    if (message) pipeline.send(message);
    else pipeline.bus.publish(letter.topic, letter.body);
  }
  const result = await finishLocalRun(pipeline, runIds.length > 0 ? runIds : [pipeline.runId]);
  // The old files go only once whatever failed again is kept anew.
  if (result.deadLetters.length === 0 || result.deadLettersKeptAt) {
    for (const { key } of kept) if (key) await pipeline.sink.deleteState(key);
  }
  return { ...result, redriven: letters.length };
}

function tryParse(body: string) {
  try {
    return parseStageMessage(body, 'dead letter');
  } catch {
    return undefined;
  }
}
