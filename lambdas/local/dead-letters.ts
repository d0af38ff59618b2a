/**
 * Where a local run keeps the messages it dead-lettered, so that `azs3copy redrive`
 * can send them again once the cause is fixed: in the destination bucket, next to
 * the pipeline's other state, one object per run at
 * `.azs3copy-state/dead-letters/<runId>.json`. The bucket outlives the process and
 * the machine, and the redrive needs the same bucket anyway. When the bucket cannot
 * take them (the cause may be the bucket itself), the CLI writes the same JSON to a
 * local file, which `redrive --dead-letters FILE` reads.
 *
 * A message holds identifiers and run settings, never credentials, so a file of
 * them is safe to keep.
 */
import { readFileSync } from 'node:fs';
import * as z from 'zod';
import { ConfigError, errorMessage } from '../core/errors';
import { STATE_PREFIX } from '../core/keys';
import { STAGE_NAMES } from '../core/stages';
import type { ObjectSink } from '../core/stores/types';
import type { DeadLetter } from './bus';

export const DEAD_LETTER_PREFIX = `${STATE_PREFIX}dead-letters/`;

const DeadLetterFileSchema = z.object({
  v: z.literal(1),
  runId: z.string().min(1),
  createdAt: z.string(),
  letters: z.array(
    z.object({
      topic: z.enum(STAGE_NAMES),
      body: z.string(),
      attempts: z.number().int(),
      error: z.string(),
    }),
  ),
});
export type DeadLetterFile = z.infer<typeof DeadLetterFileSchema>;

export function deadLetterKey(runId: string): string {
  return `${DEAD_LETTER_PREFIX}${runId}.json`;
}

export function deadLetterFile(runId: string, letters: DeadLetter[]): DeadLetterFile {
  return { v: 1, runId, createdAt: new Date().toISOString(), letters: letters.map((l) => ({ ...l, topic: l.topic as DeadLetterFile['letters'][number]['topic'] })) };
}

/** Keep a run's dead letters in the bucket; returns where (an s3:// URL). */
export async function keepDeadLetters(sink: ObjectSink, bucket: string, runId: string, letters: DeadLetter[]): Promise<string> {
  await sink.putJson(deadLetterKey(runId), deadLetterFile(runId, letters));
  return `s3://${bucket}/${deadLetterKey(runId)}`;
}

/** The dead letters kept in the bucket: every run's, or one run's. */
export async function deadLettersInBucket(sink: ObjectSink, runId?: string): Promise<{ key: string; file: DeadLetterFile }[]> {
  const keys: string[] = [];
  if (runId) {
    keys.push(deadLetterKey(runId));
  } else {
    let after: string | undefined;
    for (;;) {
      const page = await sink.list(DEAD_LETTER_PREFIX, after, 1000);
      keys.push(...page.objects.map((o) => o.key).filter((k) => k.endsWith('.json')));
      if (!page.truncated || page.objects.length === 0) break;
      after = page.objects[page.objects.length - 1].key;
    }
  }
  const found: { key: string; file: DeadLetterFile }[] = [];
  for (const key of keys) {
    const raw = await sink.getJson<unknown>(key);
    if (raw === undefined) {
      if (runId) throw new ConfigError(`no dead letters are kept for run ${runId} (looked for ${key}): check the run id in the copy's summary`);
      continue;
    }
    found.push({ key, file: parseDeadLetterFile(raw, key) });
  }
  return found;
}

/** Dead letters from a local file, as the CLI writes when the bucket cannot take them. */
export function deadLettersFromFile(path: string): DeadLetterFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the dead-letter file ${path} (${errorMessage(error)})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ConfigError(`${path} is not JSON: give the dead-letter file a copy run wrote`);
  }
  return parseDeadLetterFile(raw, path);
}

function parseDeadLetterFile(raw: unknown, where: string): DeadLetterFile {
  const parsed = DeadLetterFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`${where} is not a dead-letter file of azs3copy (${[...issue.path].join('.') || 'top'}: ${issue.message})`);
  }
  return parsed.data;
}
