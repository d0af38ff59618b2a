/**
 * The run's state, kept in a StateTable and written by the stages as they work:
 * the one place a run's progress, outcome and report come from, deployed and local.
 *
 * Accounting is by unit: every blob a listing routes belongs to exactly one unit
 * (the blobs of one copy message, or one large blob), created when the listing
 * routes it, with each blob's state `p` (pending), `c`, `s` or `f`. A stage
 * settles blobs of a unit; the unit's item and the run's counters change together
 * (one transaction, conditional on the unit's version), so a duplicate or retried
 * delivery changes no count, and a blob's count moves with its last true outcome
 * (a copy is never overturned by a later duplicate's failure).
 *
 * Items: `runs / <runId>` the run (settings, counters, state); `locks / <pipeline>`
 * which run a pipeline is on; in the run's partition `run.<runId>`: `unit.<id>` a
 * unit, `list.<n>` a listing invocation's claim, `upload.<hash>.parts` a multipart
 * upload's part counter with `upload.<hash>.part.<n>` per part, and
 * `upload.<hash>.verify` how far the check of its copy got.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { mapLimit } from './batching';
import { formatDuration } from './status';
import type { PlanTally } from './cost/tally';
import type { RunSettings } from './messages';
import { writeToken, type StateItem, type StateTable, type Update } from './state/table';

/** How far the check of a completed copy got: bytes read, the MD5's saved state, the composite checksum's. */
export interface VerificationProgress {
  offset: number;
  state?: string;
  /** A check from the source (composite-checksum.ts): the composite CRC32C's saved state. */
  crc32c?: string;
}

export type RunStateName = 'running' | 'complete' | 'stalled';
export type BlobStatus = 'copied' | 'skipped' | 'failed';

/** The counters a run keeps; each blob adds to exactly one outcome once. */
export interface RunCounters {
  /** Blobs the listing saw (before any filter). */
  listed: number;
  beforeBeginDate: number;
  filtered: number;
  unchanged: number;
  /** Blobs given an outcome to reach (every listed blob that is not unchanged, filtered out or before begindate). */
  routed: number;
  /** Bytes of the routed blobs that are to be copied. */
  routedBytes: number;
  settled: number;
  copied: number;
  skipped: number;
  failed: number;
  bytesCopied: number;
  /** Bytes written so far, parts of unfinished uploads included (for the rate and the ETA). */
  bytesMoved: number;
  listInvocations: number;
  /** Containers whose listing is done. */
  listingsDone: number;
  /** Objects of the destination the listings looked at (the mirror guard's 1% is of these). */
  destinationSeen: number;
  /** Mirror: copies found whose blob is gone, how many have an outcome, and how many were deleted. */
  deletesPlanned: number;
  deletesSettled: number;
  deleted: number;
}

export const ZERO_COUNTERS: RunCounters = {
  listed: 0, beforeBeginDate: 0, filtered: 0, unchanged: 0, routed: 0, routedBytes: 0, settled: 0, copied: 0, skipped: 0,
  failed: 0, bytesCopied: 0, bytesMoved: 0, listInvocations: 0, listingsDone: 0, destinationSeen: 0, deletesPlanned: 0,
  deletesSettled: 0, deleted: 0,
};

export interface RunRecord extends RunCounters {
  runId: string;
  pipeline: string;
  state: RunStateName;
  settings: RunSettings;
  startedAt: string;
  finishedAt?: string;
  lastProgressAt: string;
  /** Every container's listing is done. */
  listingDone: boolean;
  /** Containers the run lists (their listings done: `listingsDone`). */
  containers: number;
  /** Keys and names are by container (`<container>/<blob name>`): several containers, or every one of the account. */
  byContainer?: boolean;
  /** A run with no progress this long while blobs are outstanding is stalled. */
  stallAfterSeconds: number;
  /** Why it stalled, once it has. */
  stalledReason?: string;
  /** Who runs it: a local process (heartbeat) or the deployed pipeline. */
  owner?: { kind: 'local'; host: string; pid: number; heartbeatAt: string } | { kind: 'pipeline' };
  /** Event-driven: the blobs of events of one hour, not a listing (see openRolling). */
  rolling?: boolean;
  /** Where the report is, once written. */
  reportKey?: string;
  /** Mirror: why no copy was deleted (the guard tripped). */
  mirrorRefused?: string;
  v?: number;
}

/** One unit of accounting: its blobs' names, sizes and states. */
export interface UnitRecord {
  unit: string;
  names: string[];
  sizes: number[];
  /** One character per blob: p(ending), c(opied), s(kipped), f(ailed). */
  status: string;
  /** Bytes written for each copied blob (the version copied may differ in size from the one listed). */
  bytes: number[];
  /** Reason for each skipped or failed blob, by index. */
  reasons: Record<string, string>;
  /** One large blob, copied in parts (its bytes move part by part); else small blobs, each in one PUT. */
  large: boolean;
  /** Mirror: not blobs but copies to delete (names are keys; c = deleted, s = kept, f = could not). */
  deletes?: boolean;
  /** The copies (by index) checked from the source: their class cannot be read back (GLACIER, DEEP_ARCHIVE). */
  fromSource?: number[];
  /**
   * Several destinations (destinations.ts): by blob index, a code per destination (p, c, s, f as above; - where
   * the destination needed no copy). The blob's own status is settled once no destination is pending.
   */
  dests?: Record<string, string>;
  /** A destination's reason by `<index>.<destination>`. */
  destReasons?: Record<string, string>;
  v?: number;
}

export interface BlobOutcome {
  name: string;
  /** The blob's place in its unit, when the message carries it (names are the fallback). */
  index?: number;
  status: BlobStatus;
  reason?: string;
  bytes?: number;
  /** How a copy was made: in one PUT (its bytes moved now) or in parts (they moved part by part, see partDone). */
  path?: 'single' | 'multipart';
  /** The copy was checked by reading the blob again from Azure, not by reading the copy back. */
  fromSource?: boolean;
  /**
   * Several destinations: the outcome in this one (by place), of `targets`, the destinations the blob goes to.
   * The blob's outcome is settled when each target has one: failed if any failed, else skipped if any was.
   */
  destination?: number;
  targets?: number[];
}

export interface NewUnit {
  unit: string;
  blobs: { name: string; size: number }[];
  large?: boolean;
  /** Copies to delete (mirror), kept apart from the blobs: sort key `delete.<id>`. */
  deletes?: boolean;
}

export interface ListingTotals {
  listed: number;
  beforeBeginDate: number;
  filtered: number;
  unchanged: number;
  routed: number;
  routedBytes: number;
  /** Mirror: copies whose blob is gone, and objects of the destination seen. */
  toDelete?: number;
  destinationSeen?: number;
  done: boolean;
  /** A dry run's plan of this listing step (cost/tally.ts), kept with its totals. */
  plan?: PlanTally;
}

/** What changed in a run's counters through one write, for metrics. */
export type CounterDelta = Partial<RunCounters>;

/** A claimed step, as `claimListing` took it. */
export interface ClaimedStep {
  container: string;
  invocation: number;
  claimVersion: number;
}

/** Steps `listed` marks done with its count in one write: DynamoDB's 100 items less the step's own and the run's. */
export const MAX_STEPS_DONE_WITH_COUNT = 98;

/** A step's claim: its version, or why it was refused (done already; held by another until a time, in ms). */
export type StepClaim = { claim: number } | { refused: 'done' } | { refused: 'held'; until: number };

export interface LedgerHooks {
  /** The run has just ended (complete or stalled), and this caller won the right to say so: write its report. */
  onEnd?(run: RunRecord): Promise<void>;
  /** Counters moved (exactly once per blob outcome): emit them as metrics. */
  onDelta?(run: { runId: string; pipeline?: string }, delta: CounterDelta): void;
}

const RUNS = 'runs';
const listingSk = (container: string, invocation: number) => `list.${container}.${String(invocation).padStart(8, '0')}`;
const LOCKS = 'locks';
const runPk = (runId: string) => `run.${runId}`;
const UNITS_PER_PAGE = 100;
const unitSk = (unit: string, deletes?: boolean) => `${deletes ? 'delete' : 'unit'}.${unit}`;
const CODE: Record<BlobStatus, string> = { copied: 'c', skipped: 's', failed: 'f' };
const DAY_SECONDS = 86_400;
/** Run state is kept this long after a run starts (DynamoDB's TTL removes it). */
export const STATE_RETENTION_DAYS = 90;

/** The sort-key prefix of a multipart upload's items in its run's partition. */
export function uploadSk(uploadId: string): string {
  return `upload.${createHash('sha256').update(uploadId).digest('hex').slice(0, 40)}.`;
}

function expiresAt(now = Date.now()): number {
  return Math.floor(now / 1000) + STATE_RETENTION_DAYS * DAY_SECONDS;
}

export type RunLedger = ReturnType<typeof runLedger>;

export function runLedger(table: StateTable, hooks: LedgerHooks = {}, clock: () => number = Date.now) {
  const nowIso = () => new Date(clock()).toISOString();

  async function getRun(runId: string): Promise<RunRecord | undefined> {
    return (await table.get(RUNS, runId)) as unknown as RunRecord | undefined;
  }

  /**
   * Change the run's state if it is still `from`, as one winner among any number of callers: true for the
   * one whose write made the change (also when its answer was lost and its retry was refused).
   */
  async function elect(runId: string, set: Record<string, unknown>, when: Update['when']): Promise<RunRecord | undefined> {
    const ballot = writeToken();
    const won = await table.update({ pk: RUNS, sk: runId, set: { ...set, ballot }, when });
    if (won) return won as unknown as RunRecord;
    const current = await getRun(runId);
    return (current as { ballot?: string } | undefined)?.ballot === ballot ? current : undefined;
  }

  /**
   * After a write that may have been the last: end the run if everything routed has an outcome.
   *
   * `recalled`: the caller has just written the run's counters, so the run as this process last wrote it is
   * enough to decide (one GET fewer per settled unit on a store that remembers). Its "not yet" holds: the
   * counters only grow, every write of them is conditional on the version before, and the process whose write
   * completes them decides from that write. Its state may be stale (another process marked the run stalled
   * since), so an election lost from memory asks the store again.
   */
  async function maybeEnd(runId: string, recalled = false): Promise<RunRecord | undefined> {
    const fromMemory = recalled && table.recall !== undefined;
    const run = (fromMemory ? await table.recall!(RUNS, runId) : await getRun(runId)) as unknown as RunRecord | undefined;
    if (!run || run.state === 'complete' || !run.listingDone || run.settled < run.routed) return undefined;
    if ((run.deletesSettled ?? 0) < (run.deletesPlanned ?? 0)) return undefined;
    const won = await elect(runId, { state: 'complete', finishedAt: nowIso(), stalledReason: undefined }, { attribute: 'state', in: [run.state] });
    if (!won) return fromMemory ? maybeEnd(runId) : undefined;
    await hooks.onEnd?.(won);
    return won;
  }

  /** Count a part once: its own item is created with the count, or not at all. */
  async function countPart(runId: string, uploadId: string, partNumber: number, partCount: number, bytes: number): Promise<void> {
    const pk = runPk(runId);
    const sk = uploadSk(uploadId);
    const part = { item: { pk, sk: `${sk}part.${String(partNumber).padStart(5, '0')}`, bytes, expiresAt: expiresAt(clock()) }, precondition: { ifAbsent: true } as const };
    const counter: Update = { pk, sk: `${sk}parts`, add: { done: 1 }, set: { partCount, expiresAt: expiresAt(clock()) } };
    const withRun = await table.transact(part, [
      counter,
      { pk: RUNS, sk: runId, add: { bytesMoved: bytes }, set: { lastProgressAt: nowIso() }, when: { attribute: 'state', in: ['running', 'stalled'] } },
    ]);
    if (withRun) {
      hooks.onDelta?.({ runId }, { bytesMoved: bytes });
      return;
    }
    // A duplicate (nothing to do), or a run that keeps no state (an older release's message): count the part alone.
    await table.transact(part, [counter]);
  }

  /**
   * Claim a step as `claimListing` does, and when it is refused say why: done already, or held by another
   * delivery whose lease has not run out. A queue's message is received again only after its visibility timeout,
   * which outlasts the lease, so a listing step need not tell the two apart; a pushed delivery (blob events) is
   * answered at once, and must not answer "done" for a step whose holder may have died (see stages/events.ts).
   */
  async function claimStep(runId: string, container: string, invocation: number, leaseMs: number): Promise<StepClaim> {
    const sk = listingSk(container, invocation);
    const claim = () => ({ pk: runPk(runId), sk, state: 'running', leaseUntil: clock() + leaseMs, expiresAt: expiresAt(clock()) });
    // Nearly every step is claimed once, by its first delivery: the write that creates the claim goes first, and
    // only a step that is there already (a redelivery, a retry) is read. One request per step, not two.
    if (await table.put(claim(), { ifAbsent: true })) return { claim: 1 };
    for (;;) {
      const current = await table.get(runPk(runId), sk);
      if (current?.state === 'done') return { refused: 'done' };
      if (current && (current.leaseUntil as number) > clock()) return { refused: 'held', until: current.leaseUntil as number };
      if (await table.put(claim(), current ? { ifVersion: current.v! } : { ifAbsent: true })) return { claim: (current?.v ?? 0) + 1 };
    }
  }

  const ledger = {
    table,

    getRun,

    /**
     * Start a run of a pipeline unless one is in progress. A run in progress is one whose state is
     * running and which is alive: for the deployed pipeline, progress within its stall time; for a local
     * process, a heartbeat (or, on this machine, the process itself). A dead one is marked stalled first.
     */
    async begin(run: {
      runId: string; pipeline: string; settings: RunSettings; stallAfterSeconds: number; owner: RunRecord['owner']; containers?: number;
      byContainer?: boolean;
    }): Promise<{ started: true } | { started: false; reason: string; current: RunRecord }> {
      for (;;) {
        const lock = await table.get(LOCKS, run.pipeline);
        if (lock) {
          const current = await getRun(lock.runId as string);
          if (current && current.state === 'running') {
            const dead = deadReason(current, clock());
            if (!dead) {
              return { started: false, reason: `run ${current.runId} of this pipeline is still in progress (started ${current.startedAt})`, current };
            }
            await ledger.markStalled(current.runId, dead, current.lastProgressAt);
          }
        }
        const now = nowIso();
        const record: RunRecord = {
          ...ZERO_COUNTERS, runId: run.runId, pipeline: run.pipeline, state: 'running', settings: run.settings, startedAt: now,
          lastProgressAt: now, listingDone: false, containers: run.containers ?? 1, listingsDone: 0, stallAfterSeconds: run.stallAfterSeconds,
          owner: run.owner, ...(run.byContainer ? { byContainer: true } : {}),
        };
        const taken = await table.put(
          { pk: LOCKS, sk: run.pipeline, runId: run.runId, at: now, expiresAt: expiresAt(clock()) },
          lock ? { ifVersion: lock.v! } : { ifAbsent: true },
        );
        if (!taken) continue; // another start raced this one: look again
        await table.put({ pk: RUNS, sk: run.runId, ...record, expiresAt: expiresAt(clock()) } as unknown as StateItem, { ifAbsent: true });
        return { started: true };
      }
    },

    /**
     * An event-driven run (one per hour, `rollingRunId`): created by the first event of its hour, alongside the
     * scheduled runs (its own pointer, not the pipeline's lock: the scheduled listing goes on reconciling). Its
     * "listing" is never done while its hour lasts; `closeRolling` ends it. Returns the pointer's previous run,
     * which the caller closes.
     */
    async openRolling(run: { runId: string; pipeline: string; settings: RunSettings; stallAfterSeconds: number; byContainer?: boolean }): Promise<{ previous?: string; created: boolean }> {
      const now = nowIso();
      const record: RunRecord = {
        ...ZERO_COUNTERS, runId: run.runId, pipeline: run.pipeline, state: 'running', settings: run.settings, startedAt: now, lastProgressAt: now,
        listingDone: false, containers: 1, listingsDone: 0, stallAfterSeconds: run.stallAfterSeconds, owner: { kind: 'pipeline' }, rolling: true,
        ...(run.byContainer ? { byContainer: true } : {}),
      };
      const created = await table.put({ pk: RUNS, sk: run.runId, ...record, expiresAt: expiresAt(clock()) } as unknown as StateItem, { ifAbsent: true });
      for (;;) {
        const pointer = await table.get(LOCKS, run.pipeline);
        // Run ids start with their hour: a later one already current stays current.
        if (pointer && (pointer.runId as string) >= run.runId) return { created };
        const moved = await table.put(
          { pk: LOCKS, sk: run.pipeline, runId: run.runId, at: now, expiresAt: expiresAt(clock()) },
          pointer ? { ifVersion: pointer.v! } : { ifAbsent: true },
        );
        if (moved) return { previous: pointer?.runId as string | undefined, created };
      }
    },

    /** An event-driven run's hour is over: no more blobs join it; it ends once each has an outcome. */
    async closeRolling(runId: string): Promise<RunRecord | undefined> {
      const run = await getRun(runId);
      if (!run || run.listingDone) return run;
      await table.update({ pk: RUNS, sk: runId, set: { listingDone: true }, when: { attribute: 'state', in: ['running', 'stalled'] } });
      return (await maybeEnd(runId)) ?? getRun(runId);
    },

    /** The run a pipeline is on, if any. */
    async currentRun(pipeline: string): Promise<RunRecord | undefined> {
      const lock = await table.get(LOCKS, pipeline);
      return lock ? getRun(lock.runId as string) : undefined;
    },

    /** Recent runs, newest first (run ids begin with their start time). */
    async recentRuns(limit = 20): Promise<RunRecord[]> {
      const all: RunRecord[] = [];
      let after: string | undefined;
      do {
        const page = await table.query(RUNS, '', { after, limit: 1000 });
        all.push(...(page.items as unknown as RunRecord[]));
        after = page.next;
      } while (after);
      return all.sort((a, b) => (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0)).slice(0, limit);
    },

    /** A local run's sign of life, so that another process can tell it from a killed one. */
    async heartbeat(runId: string): Promise<void> {
      const run = await getRun(runId);
      if (run?.owner?.kind !== 'local') return;
      await table.update({ pk: RUNS, sk: runId, set: { owner: { ...run.owner, heartbeatAt: nowIso() } }, when: { attribute: 'state', in: ['running'] } });
    },

    /**
     * Claim listing invocation `n` of a run, so that a duplicate delivery of its message does nothing while
     * the first works, and after it has finished; a claim whose lease ran out (its invocation died) is taken over.
     */
    async claimListing(runId: string, container: string, invocation: number, leaseMs: number): Promise<number | undefined> {
      const taken = await claimStep(runId, container, invocation, leaseMs);
      return 'claim' in taken ? taken.claim : undefined;
    },

    claimStep,

    /**
     * Give a listing step's claim back (its invocation failed): the retry takes it at once, rather than finding it
     * held until the lease runs out and dropping the step as another delivery's. Only while the claim is ours.
     */
    async releaseListing(runId: string, container: string, invocation: number, claimVersion: number): Promise<void> {
      const sk = listingSk(container, invocation);
      await table.put({ pk: runPk(runId), sk, state: 'running', leaseUntil: 0, expiresAt: expiresAt(clock()) }, { ifVersion: claimVersion });
    },

    /** Create the units a listing page routes (before their messages go out); a unit that exists is kept. */
    async addUnits(runId: string, units: NewUnit[]): Promise<void> {
      await Promise.all(
        units.map((u) =>
          table.put(
            {
              pk: runPk(runId), sk: unitSk(u.unit, u.deletes), unit: u.unit, names: u.blobs.map((b) => b.name), sizes: u.blobs.map((b) => b.size),
              status: 'p'.repeat(u.blobs.length), bytes: u.blobs.map(() => 0), reasons: {}, large: u.large ?? false, deletes: u.deletes || undefined,
              expiresAt: expiresAt(clock()),
            },
            { ifAbsent: true },
          ),
        ),
      );
    },

    /**
     * A listing invocation finished: count what it saw, once, and note whether the listing is done. `alsoDone`: other
     * claimed steps whose counts are in these totals (blob events count a batch's blob versions under the batch's own
     * step), marked done in the same write, so no crash can leave them counted and yet claimable again. At most
     * MAX_STEPS_DONE_WITH_COUNT of them (DynamoDB writes at most 100 items in one transaction).
     */
    async listed(runId: string, container: string, invocation: number, claimVersion: number, totals: ListingTotals, alsoDone: ClaimedStep[] = []): Promise<boolean> {
      if (alsoDone.length > MAX_STEPS_DONE_WITH_COUNT) throw new Error(`${alsoDone.length} steps to mark done with one count: at most ${MAX_STEPS_DONE_WITH_COUNT}`);
      const sk = listingSk(container, invocation);
      const delta: CounterDelta = {
        listed: totals.listed, beforeBeginDate: totals.beforeBeginDate, filtered: totals.filtered, unchanged: totals.unchanged,
        routed: totals.routed, routedBytes: totals.routedBytes, listInvocations: 1, listingsDone: totals.done ? 1 : 0,
        ...(totals.toDelete ? { deletesPlanned: totals.toDelete } : {}), ...(totals.destinationSeen ? { destinationSeen: totals.destinationSeen } : {}),
      };
      const counted = await table.transact(
        { item: { pk: runPk(runId), sk, state: 'done', ...totals, expiresAt: expiresAt(clock()) }, precondition: { ifVersion: claimVersion } },
        [{
          pk: RUNS, sk: runId, add: delta as Record<string, number>, set: { lastProgressAt: nowIso() },
          when: { attribute: 'state', in: ['running', 'stalled'] },
        }, ...alsoDone.map((step): Update => ({
          pk: runPk(runId), sk: listingSk(step.container, step.invocation), set: { state: 'done' }, when: { attribute: 'v', in: [step.claimVersion] },
        }))],
      );
      if (!counted) return false;
      hooks.onDelta?.({ runId }, delta);
      if (!totals.done) return true;
      // The last container's listing done makes the run's listing done (a run of an older release counts one).
      const run = await getRun(runId);
      if (run && !run.listingDone && (run.listingsDone ?? 0) >= (run.containers ?? 1)) {
        await table.update({ pk: RUNS, sk: runId, set: { listingDone: true } });
      }
      await maybeEnd(runId);
      return true;
    },

    /**
     * Mark claimed steps done without counting anything for them: their counts went in with another step's
     * (blob events count a batch's blob versions together, under the batch's own step; see stages/events.ts).
     */
    async stepsDone(runId: string, steps: ClaimedStep[]): Promise<void> {
      await mapLimit(steps, 16, (s) =>
        table.put({ pk: runPk(runId), sk: listingSk(s.container, s.invocation), state: 'done', expiresAt: expiresAt(clock()) }, { ifVersion: s.claimVersion }));
    },

    /**
     * Record the outcomes of some blobs of a unit. Returns the counters' change (empty for a duplicate).
     * A unit the run does not know (a message of an older release, whose run kept no state) is not counted.
     */
    async settle(runId: string, unitId: string, outcomes: BlobOutcome[], options: { deletes?: boolean } = {}): Promise<CounterDelta | undefined> {
      const sk = unitSk(unitId, options.deletes);
      for (let fresh = !table.recall; ; fresh = true) {
        // At first, possibly as this process last wrote it: the write below is conditional on its version, and a
        // refusal, or finding nothing to add, reads it again.
        const unit = (await (fresh ? table.get(runPk(runId), sk) : table.recall!(runPk(runId), sk))) as unknown as UnitRecord | undefined;
        if (!unit) return undefined;
        const merged = merge(unit, outcomes);
        if (!merged) {
          if (!fresh) continue;
          return {};
        }
        const { next, delta } = merged;
        const written = await table.transact(
          { item: { ...(next as unknown as StateItem), pk: runPk(runId), sk }, precondition: { ifVersion: unit.v! } },
          [{ pk: RUNS, sk: runId, add: delta as Record<string, number>, set: { lastProgressAt: nowIso() } }],
        );
        if (!written) continue; // another delivery settled this unit meanwhile: merge onto what it wrote
        hooks.onDelta?.({ runId }, delta);
        if (delta.settled) await maybeEnd(runId, true);
        return delta;
      }
    },

    /**
     * Part `n` of a multipart upload is in. Counted once per part however often it is delivered; true when
     * every part is in (also for a duplicate delivery after that, so a lost completion message is sent again).
     */
    async partDone(runId: string, uploadId: string, partNumber: number, partCount: number, bytes: number): Promise<boolean> {
      await countPart(runId, uploadId, partNumber, partCount, bytes);
      return ((await table.get(runPk(runId), `${uploadSk(uploadId)}parts`))?.done as number) >= partCount;
    },

    /** Parts found in an upload (a resumed one): count each that was not counted yet. */
    async partsPresent(runId: string, uploadId: string, parts: { partNumber: number; bytes: number }[], partCount: number): Promise<void> {
      await mapLimit(parts, 16, (p) => countPart(runId, uploadId, p.partNumber, partCount, p.bytes));
    },

    /**
     * Take the verification of a completed upload's copy for `leaseMs`: where it got to (offset, saved MD5
     * state, and for a check from the source the composite checksum's), or undefined while another holds it.
     */
    async claimVerification(runId: string, uploadId: string, leaseMs: number): Promise<(VerificationProgress & { version: number }) | undefined> {
      const pk = runPk(runId);
      const sk = `${uploadSk(uploadId)}verify`;
      for (;;) {
        const current = await table.get(pk, sk);
        if (current && (current.leaseUntil as number) > clock()) return undefined;
        const offset = (current?.offset as number | undefined) ?? 0;
        const state = current?.state as string | undefined;
        const crc32c = current?.crc32c as string | undefined;
        const item = { pk, sk, offset, state, crc32c, leaseUntil: clock() + leaseMs, expiresAt: expiresAt(clock()) };
        if (await table.put(item, current ? { ifVersion: current.v! } : { ifAbsent: true })) return { offset, state, crc32c, version: (current?.v ?? 0) + 1 };
      }
    },

    /**
     * Take the completion of an upload: true for the one caller that may send CompleteMultipartUpload now; false
     * while another's claim is younger than `leaseMs` (S3 may still be completing it for that one).
     */
    async claimCompletion(runId: string, uploadId: string, leaseMs: number): Promise<boolean> {
      const pk = runPk(runId);
      const sk = `${uploadSk(uploadId)}complete`;
      for (;;) {
        const current = await table.get(pk, sk);
        if (current && (current.leaseUntil as number) > clock()) return false;
        const item = { pk, sk, leaseUntil: clock() + leaseMs, expiresAt: expiresAt(clock()) };
        if (await table.put(item, current ? { ifVersion: current.v! } : { ifAbsent: true })) return true;
      }
    },

    /** The completion failed (S3 answered with an error): the next delivery may ask again at once. */
    async releaseCompletion(runId: string, uploadId: string): Promise<void> {
      await table.put({ pk: runPk(runId), sk: `${uploadSk(uploadId)}complete`, leaseUntil: 0, expiresAt: expiresAt(clock()) });
    },

    /** Save how far verification got and let the next invocation take it; false if the claim was lost meanwhile. */
    async saveVerification(runId: string, uploadId: string, version: number, progress: VerificationProgress & { state: string }): Promise<boolean> {
      return table.put({ pk: runPk(runId), sk: `${uploadSk(uploadId)}verify`, ...progress, leaseUntil: 0, expiresAt: expiresAt(clock()) }, { ifVersion: version });
    },

    /** Forget an upload's part counts (its upload completed or was abandoned): up to 10,000 items kept for nothing. */
    async forgetUpload(runId: string, uploadId: string): Promise<void> {
      const pk = runPk(runId);
      let after: string | undefined;
      do {
        const page = await table.query(pk, uploadSk(uploadId), { after, limit: 1000 });
        await Promise.all(page.items.map((i) => table.delete(pk, i.sk)));
        after = page.next;
      } while (after);
    },

    /**
     * Units of a run (or, with `deletes`, its mirror's deletions), a page at a time, in unit order. A page is
     * 100 units (10,000 blobs): DynamoDB's 1 MB pages hold about that many anyway, and a local report over
     * 200,000 blobs peaked 6 MiB higher reading pages of 500 (bench/memory.ts).
     */
    async unitsPage(runId: string, after?: string, options: { deletes?: boolean } = {}): Promise<{ units: UnitRecord[]; next?: string }> {
      const page = await table.query(runPk(runId), options.deletes ? 'delete.' : 'unit.', { after, limit: UNITS_PER_PAGE });
      return { units: page.items as unknown as UnitRecord[], next: page.next };
    },

    /** Every unit of a run (or, with `deletes`, its mirror's deletions), read a page at a time; `maxPages` stops early. */
    async *units(runId: string, options: { deletes?: boolean; maxPages?: number } = {}): AsyncGenerator<UnitRecord> {
      let after: string | undefined;
      let pages = 0;
      do {
        const page = await ledger.unitsPage(runId, after, options);
        yield* page.units;
        after = page.next;
      } while (after && ++pages < (options.maxPages ?? Number.POSITIVE_INFINITY));
    },

    /** Mirror: the guard tripped, nothing is deleted; each planned deletion is settled as kept, with the reason. */
    async refuseDeletions(runId: string, reason: string): Promise<void> {
      await table.update({ pk: RUNS, sk: runId, set: { mirrorRefused: reason } });
      for await (const unit of ledger.units(runId, { deletes: true })) {
        await ledger.settle(runId, unit.unit, unit.names.map((name, index) => ({ name, index, status: 'skipped' as const, reason })), { deletes: true });
      }
    },

    /**
     * Mark a running run stalled (no progress for its stall time, or its process gone), once: the caller that
     * wins writes the report. `seenProgressAt` is the progress time that justified it; newer progress wins.
     */
    async markStalled(runId: string, reason: string, seenProgressAt: string): Promise<RunRecord | undefined> {
      const run = await elect(runId, { state: 'stalled', stalledReason: reason, finishedAt: nowIso() }, [
        { attribute: 'state', in: ['running'] }, { attribute: 'lastProgressAt', in: [seenProgressAt] },
      ]);
      if (!run) return undefined;
      await hooks.onEnd?.(run);
      return run;
    },

    /** Mark a running run stalled when it has made no progress for its stall time. */
    async checkStalled(runId: string): Promise<RunRecord | undefined> {
      const run = await getRun(runId);
      if (!run || run.state !== 'running') return undefined;
      const dead = deadReason(run, clock());
      return dead ? ledger.markStalled(runId, dead, run.lastProgressAt) : undefined;
    },

    /**
     * Add request counts (attributes `req:<service>:<operation>`, cost/requests.ts) to the run's item: one
     * update at the end of each deployed invocation. A run that is not known is left alone.
     */
    async addRequests(runId: string, counts: Record<string, number>): Promise<void> {
      if (Object.keys(counts).length === 0) return;
      await table.update({ pk: RUNS, sk: runId, add: counts, when: { attribute: 'state', in: ['running', 'stalled', 'complete'] } });
    },

    /** Note where the run's report was written. */
    async reported(runId: string, reportKey: string): Promise<void> {
      await table.update({ pk: RUNS, sk: runId, set: { reportKey } });
    },

    maybeEnd,
  };
  return ledger;
}

/** The event-driven run of the hour `now` falls in: `20261201T080000Z-events`. */
export function rollingRunId(now: Date): string {
  return `${now.toISOString().slice(0, 13).replace(/-/g, '')}0000Z-events`;
}

/** The pointer to a pipeline's current event-driven run. */
export function rollingPipeline(pipeline: string): string {
  return `${pipeline}.events`;
}

/** Why a running run is no longer alive, or undefined while it is. */
export function deadReason(run: RunRecord, now: number): string | undefined {
  const quietSeconds = (now - Date.parse(run.lastProgressAt)) / 1000;
  if (run.owner?.kind === 'local') {
    const sameHost = run.owner.host === hostname();
    if (sameHost && !processAlive(run.owner.pid)) {
      return `the process that ran it (pid ${run.owner.pid}) ended before the run did`;
    }
    const silentSeconds = (now - Date.parse(run.owner.heartbeatAt)) / 1000;
    if (silentSeconds > 120) return `the process that ran it (pid ${run.owner.pid} on ${run.owner.host}) has not been heard from for ${formatDuration(silentSeconds)}`;
    return undefined;
  }
  if (quietSeconds > run.stallAfterSeconds) {
    return `no progress for ${formatDuration(quietSeconds)} (stall time ${formatDuration(run.stallAfterSeconds)}) with blobs outstanding`;
  }
  return undefined;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A process that has ended but not yet been reaped (a zombie) still takes signal 0. A copy killed with its
  // launcher is reaped by whatever adopts it, which may be late or never (a container's first process), and
  // it ran no more after it ended.
  return !zombie(pid);
}

function zombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (command) state ...": the command may hold spaces and parentheses, so the state follows the last ')'.
    return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch (error) {
    // Gone between the two looks: ended. No /proc (not Linux): signal 0's answer stands.
    return (error as NodeJS.ErrnoException).code === 'ENOENT' && process.platform === 'linux';
  }
}

/** A unit with these outcomes applied, and the counters' change; undefined when nothing changes. */
export function merge(unit: UnitRecord, outcomes: BlobOutcome[]): { next: UnitRecord; delta: CounterDelta } | undefined {
  const status = unit.status.split('');
  const bytes = [...unit.bytes];
  const reasons = { ...unit.reasons };
  const fromSource = new Set(unit.fromSource ?? []);
  const delta: Required<Pick<RunCounters, 'settled' | 'copied' | 'skipped' | 'failed' | 'bytesCopied' | 'bytesMoved'>> = {
    settled: 0, copied: 0, skipped: 0, failed: 0, bytesCopied: 0, bytesMoved: 0,
  };
  const count = (code: string, sign: number, i: number) => {
    if (code === 'c') {
      delta.copied += sign;
      delta.bytesCopied += sign * bytes[i];
    } else if (code === 's') delta.skipped += sign;
    else if (code === 'f') delta.failed += sign;
    if (code !== 'p') delta.settled += sign;
  };
  const dests = { ...unit.dests };
  const destReasons = { ...unit.destReasons };
  let changed = false;
  for (const given of outcomes) {
    const i = given.index !== undefined && unit.names[given.index] === given.name ? given.index : unit.names.indexOf(given.name);
    if (i < 0) continue;
    let outcome = given;
    if (given.destination !== undefined && given.targets) {
      const ofDestination = destinationOutcome(dests, destReasons, i, given);
      if (ofDestination === 'unchanged') continue;
      changed = true;
      // Still waiting for another destination: the blob's own outcome waits too.
      if (ofDestination === 'pending') continue;
      outcome = ofDestination;
    }
    const before = status[i];
    const code = CODE[outcome.status];
    // The last word wins, except that a copy stands: a later duplicate failing to find a finished upload is not news.
    if (before === 'c' && code !== 'c') continue;
    const newBytes = outcome.status === 'copied' ? (outcome.bytes ?? unit.sizes[i]) : 0;
    const newReason = outcome.status === 'copied' ? undefined : outcome.reason;
    const checkedFromSource = outcome.status === 'copied' && outcome.fromSource === true;
    if (before === code && bytes[i] === newBytes && reasons[i] === newReason && (!checkedFromSource || fromSource.has(i))) continue;
    count(before, -1, i);
    status[i] = code;
    bytes[i] = newBytes;
    if (newReason === undefined) delete reasons[i];
    else reasons[i] = newReason;
    if (checkedFromSource) fromSource.add(i);
    count(code, 1, i);
    if (before !== 'c' && code === 'c' && outcome.path !== 'multipart') delta.bytesMoved += newBytes;
    changed = true;
  }
  if (!changed) return undefined;
  const perDestination = Object.keys(dests).length > 0 ? { dests, destReasons } : {};
  if (unit.deletes) {
    // Copies deleted for the mirror are not blobs: they have counters of their own.
    const deletes: CounterDelta = { deletesSettled: delta.settled, deleted: delta.copied };
    return { next: { ...unit, status: status.join(''), bytes, reasons }, delta: Object.fromEntries(Object.entries(deletes).filter(([, v]) => v !== 0)) };
  }
  const nonZero = Object.fromEntries(Object.entries(delta).filter(([, v]) => v !== 0)) as CounterDelta;
  const checked = fromSource.size > 0 ? { fromSource: [...fromSource].sort((a, b) => a - b) } : {};
  return { next: { ...unit, status: status.join(''), bytes, reasons, ...checked, ...perDestination }, delta: nonZero };
}

/**
 * One destination's outcome for blob `i`, recorded in `dests`: 'unchanged' when it says nothing new, 'pending'
 * while another target has no outcome yet, else the blob's outcome across its targets.
 */
function destinationOutcome(
  dests: Record<string, string>, destReasons: Record<string, string>, i: number, outcome: BlobOutcome,
): BlobOutcome | 'unchanged' | 'pending' {
  const d = outcome.destination!;
  const targets = new Set([...outcome.targets!, d]);
  const width = Math.max(...targets) + 1;
  const codes = (dests[i] ?? '').padEnd(width, '-').split('');
  for (const t of targets) if (codes[t] === '-') codes[t] = 'p';
  const code = CODE[outcome.status];
  const reason = outcome.status === 'copied' ? undefined : outcome.reason;
  const at = `${i}.${d}`;
  // As for a blob: a copy in a destination stands against a later duplicate's other word.
  if (codes[d] === 'c' && code !== 'c') return 'unchanged';
  if (codes[d] === code && destReasons[at] === reason && dests[i] === codes.join('')) return 'unchanged';
  codes[d] = code;
  dests[i] = codes.join('');
  if (reason === undefined) delete destReasons[at];
  else destReasons[at] = reason;
  if (codes.includes('p')) return 'pending';
  const worst = codes.includes('f') ? 'f' : codes.includes('s') ? 's' : 'c';
  const reasons = codes.flatMap((c, n) => (c === worst && destReasons[`${i}.${n}`] ? [destReasons[`${i}.${n}`]] : []));
  const status = worst === 'f' ? 'failed' : worst === 's' ? 'skipped' : 'copied';
  return { ...outcome, status, reason: worst === 'c' ? undefined : [...new Set(reasons)].join('; '), destination: undefined, targets: undefined };
}

export type { Update };
