/**
 * The stages by name: which message kind each consumes and the function that
 * handles it. Deployed names, topics and the local bus are all derived from here.
 */
import type { StageContext } from '../context';
import type { StageMessage } from '../messages';
import { download } from './download';
import { findBlobs } from './find-blobs';
import { largefileInitializer } from './largefile-initializer';
import { parter } from './parter';
import { recombinator } from './recombinator';

export const STAGE_NAMES = ['qualify', 'find-blobs', 'download', 'largefile-initializer', 'parter', 'recombinator'] as const;
export type StageName = (typeof STAGE_NAMES)[number];
/** Stages fed by a topic (all but qualify, which a schedule or a person starts). */
export type TopicStage = Exclude<StageName, 'qualify'>;

type Handler<K extends StageMessage['kind']> = (ctx: StageContext, message: Extract<StageMessage, { kind: K }>) => Promise<unknown>;

export const TOPIC_STAGES = {
  'find-blobs': { kind: 'list-page', run: findBlobs as Handler<'list-page'> },
  download: { kind: 'copy-blobs', run: download as Handler<'copy-blobs'> },
  'largefile-initializer': { kind: 'large-blob', run: largefileInitializer as Handler<'large-blob'> },
  parter: { kind: 'copy-part', run: parter as Handler<'copy-part'> },
  recombinator: { kind: 'parts-done', run: recombinator as Handler<'parts-done'> },
} as const satisfies Record<TopicStage, { kind: StageMessage['kind']; run: unknown }>;

/** The stage a message kind goes to. */
export function stageOf(kind: StageMessage['kind']): TopicStage {
  for (const [stage, spec] of Object.entries(TOPIC_STAGES)) if (spec.kind === kind) return stage as TopicStage;
  throw new Error(`no stage takes messages of kind ${kind}`);
}

/** The deployed function's number, as users know it from the reference design (lambda01..06). */
export function stageNumber(stage: StageName): string {
  return `lambda${String(STAGE_NAMES.indexOf(stage) + 1).padStart(2, '0')}`;
}
