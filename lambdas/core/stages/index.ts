/**
 * The stages by name: each stage's spec (specs.ts) bound to the function that
 * does its work. The binding only compiles when the function asks for no more
 * than its spec grants: a stage that starts to use another capability, or to send
 * another kind of message, must say so in its spec, and its deployed role and
 * subscriptions follow from there.
 */
import type { ContextOf } from '../context';
import type { StageMessage } from '../messages';
import { download } from './download';
import { findBlobs } from './find-blobs';
import { largefileInitializer } from './largefile-initializer';
import { parter } from './parter';
import { recombinator } from './recombinator';
import { STAGE_SPECS, type MessageKind, type StageSpec, type TopicStage } from './specs';

export * from './specs';

export interface BoundStage<S extends StageSpec & { kind: MessageKind }> {
  spec: S;
  run(ctx: ContextOf<S>, message: Extract<StageMessage, { kind: S['kind'] }>): Promise<unknown>;
}

function bind<S extends StageSpec & { kind: MessageKind }>(spec: S, run: BoundStage<S>['run']): BoundStage<S> {
  return { spec, run };
}

export const TOPIC_STAGES = {
  'find-blobs': bind(STAGE_SPECS['find-blobs'], findBlobs),
  download: bind(STAGE_SPECS.download, download),
  'largefile-initializer': bind(STAGE_SPECS['largefile-initializer'], largefileInitializer),
  parter: bind(STAGE_SPECS.parter, parter),
  recombinator: bind(STAGE_SPECS.recombinator, recombinator),
} satisfies { [T in TopicStage]: BoundStage<(typeof STAGE_SPECS)[T]> };
