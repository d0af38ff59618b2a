/**
 * What each stage is and may do, as data: the message kind it takes, the bucket
 * capabilities it is handed, and the kinds of message it sends. Nothing else
 * decides a stage's access: its context holds only these capabilities (so code
 * that reaches for another does not compile), the local bus routes what it sends,
 * and the deployed function's IAM role and topic subscriptions are derived from
 * the same lines (lib/grants.ts). Kept free of imports with weight, so the CDK app
 * can read it without loading the stages' code.
 */
import type { StageMessage } from '../messages';
import type { SinkCapability } from '../stores/types';

export type MessageKind = StageMessage['kind'];

export interface StageSpec {
  /** The message kind the stage takes (qualify takes none: a schedule or a person starts it). */
  readonly kind?: MessageKind;
  /** Bucket capabilities (lambdas/core/stores/types.ts). */
  readonly needs: readonly SinkCapability[];
  /** Kinds of message it sends; each goes to the stage that takes it. */
  readonly sends: readonly MessageKind[];
  /** It reads the dead-letter queues, to say where an outstanding blob's message waits. */
  readonly readsDeadLetters?: boolean;
  /**
   * It reads the Azure source (its context holds one only then), so it signs in to Azure: with a federated
   * secret, as its own role, which then may ask STS for a web identity token and must be trusted in Entra ID.
   */
  readonly readsAzure?: boolean;
}

/*
 * Every stage keeps the run's state (it records outcomes, and whichever records the last one writes the
 * report under the state prefix), so every stage needs `state` and the run-state table.
 */
export const STAGE_SPECS = {
  // qualify checks that the container can be listed and read before a run starts.
  qualify: { needs: ['check', 'state'], sends: ['list-page'], readsDeadLetters: true, readsAzure: true },
  // find-blobs deletes (mirror): copies whose blob is gone.
  'find-blobs': { kind: 'list-page', needs: ['reader', 'deleter', 'state'], sends: ['list-page', 'copy-blobs', 'large-blob'], readsAzure: true },
  // download: a blob that grew past the large-blob size while listed is sent to the large path;
  // blobs that failed for a passing reason go round again on their own.
  download: { kind: 'copy-blobs', needs: ['writer', 'deleter', 'state'], sends: ['copy-blobs', 'large-blob'], readsAzure: true },
  'largefile-initializer': {
    kind: 'large-blob',
    // completer: a resumed upload's parts are listed, so only the missing ones are copied again.
    needs: ['reader', 'multipart', 'completer', 'state'],
    sends: ['copy-part', 'parts-done', 'copy-blobs', 'large-blob'],
    readsAzure: true,
  },
  parter: { kind: 'copy-part', needs: ['reader', 'multipart', 'state'], sends: ['parts-done', 'copy-blobs', 'large-blob'], readsAzure: true },
  // recombinator: completes, and checks a blob with a Content-MD5 by reading its copy back from S3; a copy in
  // a class S3 cannot read back without a restore (GLACIER, DEEP_ARCHIVE) it checks by reading the blob from
  // Azure instead, against the blob's Content-MD5 and S3's composite checksum. So it reads Azure, for those
  // copies only: its source signs in on first use (context.ts), and it re-plans a blob that changed meanwhile.
  recombinator: {
    kind: 'parts-done',
    needs: ['reader', 'deleter', 'multipart', 'completer', 'state'],
    sends: ['parts-done', 'copy-blobs', 'large-blob'],
    readsAzure: true,
  },
  // events (lambda07): Event Grid's webhook. It routes created blobs to the copy stages as the listing does,
  // and, in mirror mode, deletes the copy of a deleted blob (after asking the source).
  events: { needs: ['reader', 'deleter', 'state'], sends: ['copy-blobs', 'large-blob'], readsAzure: true },
} as const satisfies Record<string, StageSpec>;

export type StageName = keyof typeof STAGE_SPECS;

/**
 * Each function's timeout as deployed by default (the `functions` context may change it). The local runner
 * stops an invocation at the same time, so work that would not fit in AWS does not fit locally either.
 */
export const DEFAULT_TIMEOUT_MINUTES: Record<StageName, number> = {
  qualify: 5,
  'find-blobs': 15,
  download: 15,
  'largefile-initializer': 5,
  parter: 15,
  recombinator: 15,
  // Event Grid waits 30 s for an answer, then delivers again.
  events: 1,
};
export const STAGE_NAMES = Object.keys(STAGE_SPECS) as StageName[];
/** Stages fed by a queue (all but qualify and events, which a schedule, a person or Event Grid calls). */
export type TopicStage = Exclude<StageName, 'qualify' | 'events'>;
export const TOPIC_STAGE_NAMES = STAGE_NAMES.filter((s): s is TopicStage => (STAGE_SPECS[s] as StageSpec).kind !== undefined);

/** The stage that takes a message kind. */
export function stageOf(kind: MessageKind): TopicStage {
  for (const stage of TOPIC_STAGE_NAMES) if (STAGE_SPECS[stage].kind === kind) return stage;
  throw new Error(`no stage takes messages of kind ${kind}`);
}

/** The stages that read Azure (and so sign in to it). */
export const AZURE_READER_STAGES: readonly StageName[] = STAGE_NAMES.filter((s) => (STAGE_SPECS[s] as StageSpec).readsAzure === true);

/** The stages a stage sends messages to. */
export function publishesTo(stage: StageName): TopicStage[] {
  return [...new Set((STAGE_SPECS[stage].sends as readonly MessageKind[]).map(stageOf))];
}

/** The deployed function's number, as users know it from the reference design (lambda01..06). */
export function stageNumber(stage: StageName): string {
  return `lambda${String(STAGE_NAMES.indexOf(stage) + 1).padStart(2, '0')}`;
}
