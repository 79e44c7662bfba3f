// Background writeback of dirty blocks (flashcache's cleaning, dm-cache's
// writeback): keeps the dirty share under a threshold, makes room in sets that
// have none, and writes everything back on demand (flush, detach).
//
// A round picks dirty, unlocked blocks, sorts them by origin block and writes
// contiguous runs to the origin as single large writes. Before a round every
// chosen block's dirty state is committed (so a crash mid-writeback finds the
// dirty record and the origin write needs no intent); after it, one commit
// flushes the origin and records the blocks clean, which frees their slots for
// reuse (a background round leaves that commit to the engine's periodic one:
// see writeback()). Concurrency: one round at a time; each block's exclusive lock is held
// from the cache read until the block is marked clean.
//
// Cleaning policy (docs/WRITEBACK.md):
//   why a round runs        rate cap   yields to clients   blocks chosen
//   no room in a set        no         no                  that set's dirty blocks
//   dirty > threshold       yes, paced yes                 a window of slots, sorted
//   dirty > max age, idle   yes        yes                 the aged blocks, sorted
//   flush / detach          no         no                  every dirty block, sorted
// "Yields to clients": while client requests are in flight a background round
// keeps one origin write in flight (instead of writebackConcurrency) and lets
// pending I/O run before each write. "Paced": while clients are busy, threshold
// cleaning writes back at a rate proportional to its excess (writeback-pace.ts).
// Time comes from an injectable timebase (clock and timers: real time, or the
// crash simulator's virtual time); its timers never keep the process alive and
// every one stops in stop().
import {
  DIRTY_THRESHOLD_PERCENT_DEFAULT, WRITEBACK_INFLIGHT_MAX, MiB, DIRTY_MAX_AGE_MS_DEFAULT, WRITEBACK_CONCURRENCY_DEFAULT,
  WRITEBACK_CHUNK_BYTES_MAX, WRITEBACK_CHUNKS_INFLIGHT, SCATTER_IO_PIECES_MIN, DIRTY_PACE_MS_DEFAULT, CLIENTS_IDLE_AFTER_MS,
  PACE_RECHECK_MS,
} from '../constants.js';
import { pieceDeviceOf } from '../layers/coalescing-device.js';
import { PieceDevice, scatterIo } from '../devices/scatter-io.js';
import { RateLimiter } from './rate-limiter.js';
import { RateMeter } from './rate-meter.js';
import { paceBytesPerSecond } from './writeback-pace.js';
import { crc32c } from '../stdx/checksum.js';
import { assert } from '../stdx/assert.js';
import { Cancel, REAL_TIME, Timebase, every, sleepOn } from '../stdx/timebase.js';
import type { CacheEngine } from './engine.js';
import { DIRTY, DIRTY_ON_DISK, HAS_CRC, PERSISTED_DIRTY, VALID } from './slot-table.js';

/** Largest single origin write a run of contiguous dirty blocks is merged into. */
export const WRITEBACK_RUN_BYTES_MAX = 4 * MiB;
/** Below the threshold by this many percentage points before threshold cleaning stops (hysteresis). */
const THRESHOLD_HYSTERESIS_PERCENT = 1;
/**
 * A flush writes back at most this much per round. A round ends with a commit, which
 * flushes the origin, and its last writes drain before the next round starts: a
 * disk-like origin does nothing else during its flush (measured: 90-300 ms idle per
 * 64 MiB round against nbdkit noparallel). 256 MiB of 4 KiB blocks is PENDING_RECORDS_MAX.
 * Progress and interruption do not wait for a round: both act per chunk.
 */
export const FLUSH_ROUND_BYTES_MAX = 256 * MiB;
/** Bounds of the age scan's period (a quarter of dirty-max-age). */
const AGE_SCAN_INTERVAL_MS_MIN = 100;
const AGE_SCAN_INTERVAL_MS_MAX = 10_000;

export interface CleanerSettings {
  /** Percent of cache blocks that may be dirty before background writeback starts. */
  dirtyThresholdPercent: number;
  /** Dirty blocks written back per background round. */
  writebackInflightMax: number;
  /** Origin writes (coalesced runs) in flight at once. */
  writebackConcurrency: number;
  /** Dirty blocks older than this are cleaned while clients are idle (flashcache fallow_delay); 0 = never. */
  dirtyMaxAgeMs: number;
  /** Background writeback cap toward the origin; 0 = unlimited. */
  writebackRateBytesPerSecond: number;
  writebackRateIops: number;
  /** While clients are busy, threshold cleaning writes back the excess at excess / this per second; 0 = full speed. */
  dirtyPaceMs: number;
}

export class Cleaner {
  readonly settings: CleanerSettings;
  private round: Promise<void> | undefined;
  private readonly noRoomSets = new Set<number>();
  private cursor = 0;
  private stopped = false;
  /** Flushes in progress: background rounds step aside while any runs. */
  private flushing = 0;
  readonly limiter = new RateLimiter();
  /** Paces threshold cleaning while clients are busy; its rate follows the excess (paceRate). */
  private readonly pace = new RateLimiter();
  /** The rate the last background turn was paced to (0: not paced). */
  private pacedBytesPerSecond = 0;
  /** Client requests counted at the last look, and when they last changed (clientsBusy). */
  private requestsSeen = -1;
  private clientsSeenMs = Number.NEGATIVE_INFINITY;
  /** Bytes written back per second (every kind of round). */
  readonly meter = new RateMeter();
  /**
   * Per set: when the age scan first saw it hold a dirty block, continuously since
   * (-1: it held none when last seen). A set's age bounds the age of each of its dirty
   * blocks, so cleaning the dirty blocks of aged sets cleans every aged block (and
   * perhaps younger ones of the same set early) at 8 bytes per set instead of per block.
   */
  private readonly dirtySinceMs: Float64Array;
  private agedSlots: number[] = [];
  private cancelAgeScan: Cancel | undefined;
  private readonly sleepers = new Set<() => void>();
  /** The batched-I/O workers have been started (noteDirty). */
  private ioWarm = false;

  constructor(private readonly engine: CacheEngine, settings: Partial<CleanerSettings> = {}, readonly time: Timebase = REAL_TIME) {
    this.settings = {
      dirtyThresholdPercent: settings.dirtyThresholdPercent ?? DIRTY_THRESHOLD_PERCENT_DEFAULT,
      writebackInflightMax: settings.writebackInflightMax ?? WRITEBACK_INFLIGHT_MAX,
      writebackConcurrency: settings.writebackConcurrency ?? WRITEBACK_CONCURRENCY_DEFAULT,
      dirtyMaxAgeMs: settings.dirtyMaxAgeMs ?? DIRTY_MAX_AGE_MS_DEFAULT,
      writebackRateBytesPerSecond: settings.writebackRateBytesPerSecond ?? 0,
      writebackRateIops: settings.writebackRateIops ?? 0,
      dirtyPaceMs: settings.dirtyPaceMs ?? DIRTY_PACE_MS_DEFAULT,
    };
    this.dirtySinceMs = new Float64Array(engine.mapping.sets).fill(-1);
    this.applySettings();
  }

  /** Bytes of the per-set state kept here. */
  get memoryBytes(): number {
    return this.dirtySinceMs.byteLength;
  }

  /** Call after changing `settings`: re-arms the limiter and the age scan, and re-checks the threshold. */
  applySettings(): void {
    assert(this.settings.writebackConcurrency >= 1 && this.settings.writebackInflightMax >= 1 && this.settings.dirtyPaceMs >= 0);
    this.limiter.set(this.settings.writebackRateBytesPerSecond, this.settings.writebackRateIops);
    this.pacedBytesPerSecond = 0;
    this.cancelAgeScan?.();
    this.cancelAgeScan = undefined;
    this.agedSlots = [];
    if (this.settings.dirtyMaxAgeMs > 0 && !this.stopped) {
      const interval = Math.min(AGE_SCAN_INTERVAL_MS_MAX, Math.max(AGE_SCAN_INTERVAL_MS_MIN, this.settings.dirtyMaxAgeMs / 4));
      this.cancelAgeScan = every(this.time, interval, () => this.scanAges());
    }
    this.wakeSleepers();
    if (!this.stopped) this.noteDirty();
  }

  /** Bytes per second written back now, and the seconds a flush would take at that rate (null: unknown). */
  estimate(): { rateBytesPerSecond: number; etaSeconds: number | null } {
    const now = this.time.now();
    const current = this.meter.rate(now);
    let rate = current > 0 ? current : this.meter.busyRate;
    if (this.limiter.bytesPerSecond > 0 && current === 0) rate = rate > 0 ? Math.min(rate, this.limiter.bytesPerSecond) : this.limiter.bytesPerSecond;
    const dirtyBytes = this.engine.table.dirtyCount * this.engine.blockBytes;
    const etaSeconds = dirtyBytes === 0 ? 0 : rate > 0 ? dirtyBytes / rate : null;
    return { rateBytesPerSecond: current, etaSeconds };
  }

  /** Notes every set's dirty age; schedules an age round when some are too old and clients are idle. */
  private scanAges(): void {
    const now = this.time.now();
    const table = this.engine.table;
    const mapping = this.engine.mapping;
    const aged: number[] = [];
    for (let set = 0; set < mapping.sets; set++) {
      if (table.dirtyPerSet[set] === 0) this.dirtySinceMs[set] = -1;
      else if (this.dirtySinceMs[set]! < 0) this.dirtySinceMs[set] = now;
      else if (now - this.dirtySinceMs[set]! >= this.settings.dirtyMaxAgeMs) {
        const first = mapping.firstBlockOf(set);
        for (let slot = first; slot < first + mapping.assoc; slot++) if (table.has(slot, DIRTY)) aged.push(slot);
      }
    }
    this.agedSlots = sortByOrigin(aged, table.originOf);
    if (aged.length > 0 && this.engine.inflight === 0) this.schedule();
  }

  get running(): boolean {
    return this.round !== undefined;
  }

  private thresholdBlocks(): number {
    return Math.floor((this.engine.mapping.cacheBlocks * this.settings.dirtyThresholdPercent) / 100);
  }

  /** Dirty blocks threshold cleaning stops at (hysteresis below the threshold). */
  private targetBlocks(): number {
    return Math.max(0, this.thresholdBlocks() - Math.floor((this.engine.mapping.cacheBlocks * THRESHOLD_HYSTERESIS_PERCENT) / 100));
  }

  /** Bytes per second background cleaning is paced to now (0: not paced). */
  get paceRateBytesPerSecond(): number {
    return this.pacedBytesPerSecond;
  }

  /**
   * Have client requests arrived in the last CLIENTS_IDLE_AFTER_MS? Counts requests
   * (the RAM tier's synchronous reads and writes included) between looks, so it costs
   * the hot path nothing; a looker that sleeps at most PACE_RECHECK_MS sees them.
   */
  private clientsBusy(nowMs: number): boolean {
    const stats = this.engine.stats;
    const requests = stats.reads + stats.writes + stats.trims;
    if (this.engine.inflight > 0 || (this.requestsSeen >= 0 && requests !== this.requestsSeen)) this.clientsSeenMs = nowMs;
    this.requestsSeen = requests;
    return nowMs - this.clientsSeenMs < CLIENTS_IDLE_AFTER_MS;
  }

  /** The pace for a background turn now (0: full speed). */
  private paceRate(nowMs: number): number {
    return paceBytesPerSecond({
      dirtyBlocks: this.engine.table.dirtyCount, thresholdBlocks: this.thresholdBlocks(), targetBlocks: this.targetBlocks(),
      cacheBlocks: this.engine.mapping.cacheBlocks, blockBytes: this.engine.blockBytes, paceMs: this.settings.dirtyPaceMs,
      clientsBusy: this.clientsBusy(nowMs),
    });
  }

  /** Called after writes: start a round if the dirty share is over the threshold. */
  noteDirty(): void {
    // The cleaner reads dirty blocks through the batched-I/O workers: start them once there is
    // dirty data to clean, not when the first round needs them (the start-up would stall it).
    if (!this.ioWarm && this.engine.table.dirtyCount > 0) {
      this.ioWarm = true;
      pieceDeviceOf(this.engine.cacheDevice)?.warm?.();
    }
    if (this.engine.table.dirtyCount > this.thresholdBlocks()) this.schedule();
  }

  /**
   * Called when a set had no evictable block: write back some of its dirty blocks. A set
   * with none may hold blocks written back by a background round whose clean records
   * wait for the periodic commit: commit now, so that they can be reused.
   */
  noteNoRoom(set: number): void {
    if (this.engine.table.dirtyPerSet[set]! === 0) {
      if (!this.engine.commitInFlight && this.awaitsCleanRecord(set)) {
        void this.engine.commit().catch((error) => this.engine.internals.log(`commit failed: ${(error as Error).message}`));
      }
      return;
    }
    this.noRoomSets.add(set);
    this.schedule();
  }

  /** Does the set hold a clean block whose record on disk may still say dirty (not reusable until a commit)? */
  private awaitsCleanRecord(set: number): boolean {
    const state = this.engine.table.state;
    const first = this.engine.mapping.firstBlockOf(set);
    for (let slot = first; slot < first + this.engine.mapping.assoc; slot++) {
      if ((state[slot]! & (DIRTY | DIRTY_ON_DISK)) === DIRTY_ON_DISK) return true;
    }
    return false;
  }

  private schedule(): void {
    if (this.round || this.stopped || this.flushing > 0) return;
    // Assign before the round can finish: a round that completes at once must still clear itself.
    const round = this.runRounds().finally(() => {
      if (this.round === round) this.round = undefined;
    });
    this.round = round;
  }

  private async runRounds(): Promise<void> {
    try {
      while (!this.stopped && this.flushing === 0) {
        const urgent = this.noRoomSets.size > 0;
        const overThreshold = this.engine.table.dirtyCount > this.thresholdBlocks();
        const aged = !urgent && !overThreshold && this.agedSlots.length > 0 && this.engine.inflight === 0;
        if (!urgent && !overThreshold && !aged) break;
        let slots: number[];
        if (aged) {
          slots = this.agedSlots.splice(0, this.settings.writebackInflightMax).filter((slot) => this.candidate(slot));
          if (slots.length === 0) continue;
        } else {
          const target = this.targetBlocks();
          const wanted = Math.min(this.settings.writebackInflightMax, Math.max(1, this.engine.table.dirtyCount - target));
          slots = this.pickFromNoRoomSets(wanted);
          // Blocks whose dirty record is durable first: a round of them needs no commit before it.
          if (slots.length === 0 && overThreshold && !this.engine.commitInFlight) this.pickAnywhere(wanted, slots, false, true);
          if (slots.length < wanted && overThreshold) this.pickAnywhere(wanted, slots);
          // The window scanned may hold no dirty block at all (dirty blocks cluster where the free
          // lists handed slots out): then scan a whole pass before giving up.
          if (slots.length === 0 && overThreshold) this.pickAnywhere(wanted, slots, true);
        }
        if (slots.length === 0) break;
        // Only room-making is urgent: it is not rate-capped and does not yield to clients.
        await this.writeback(slots, !urgent);
      }
    } catch (error) {
      this.engine.internals.log(`writeback failed: ${(error as Error).message}`);
    } finally {
      this.pacedBytesPerSecond = 0;
    }
  }

  /**
   * Writes back every dirty block, in origin order, in rounds of up to
   * FLUSH_ROUND_BYTES_MAX; `progress` gets the dirty blocks left after each
   * chunk. Not rate-capped. When `signal` aborts, it stops after the chunks in
   * flight (what was written back is committed; the rest stays dirty).
   */
  async writebackAll(progress?: (dirtyBlocks: number) => void, signal?: AbortSignal): Promise<void> {
    this.flushing++;
    this.wakeSleepers();
    try {
      while (this.round) await this.round;
      const table = this.engine.table;
      const roundBlocks = Math.max(this.settings.writebackInflightMax, Math.floor(FLUSH_ROUND_BYTES_MAX / this.engine.blockBytes));
      let idleRounds = 0;
      // The previous round's closing commit, still running while the next round is written back:
      // allowed only when the next round's dirty records were durable before that commit started.
      let committing: Promise<void> | undefined;
      try {
        while (table.dirtyCount > 0 && !signal?.aborted) {
          const sorted = this.dirtySorted();
          if (sorted.length === 0) {
            // Every dirty block is busy with a client request; let them finish.
            idleRounds++;
            assert(idleRounds < 100_000, 'writeback made no progress');
            await sleepOn(this.time, 1);
            continue;
          }
          idleRounds = 0;
          let slots = sorted.slice(0, roundBlocks);
          let durable = this.dirtyDurable(slots);
          for (let start = 0; slots.length > 0 && !signal?.aborted; start += roundBlocks) {
            if (!durable) {
              if (committing) await committing;
              committing = undefined;
              if (!this.dirtyDurable(slots)) await this.engine.commit();
            }
            const failure = await this.writeRound(slots, false, { progress, signal });
            const next = sorted.slice(start + roundBlocks, start + 2 * roundBlocks);
            if (committing) await committing;
            durable = next.length > 0 && this.dirtyDurable(next);
            committing = this.engine.commit();
            committing.catch(() => {}); // awaited below; no unhandled rejection meanwhile
            if (failure) throw failure.reason;
            slots = next;
          }
        }
      } finally {
        if (committing) await committing;
      }
      await this.engine.commit();
    } finally {
      this.flushing--;
      if (this.flushing === 0 && !this.stopped) this.noteDirty();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelAgeScan?.();
    this.cancelAgeScan = undefined;
    this.wakeSleepers();
    while (this.round) await this.round;
  }

  /** Every dirty, unlocked block, sorted by origin block. */
  private dirtySorted(): number[] {
    const table = this.engine.table;
    const slots: number[] = [];
    for (let slot = 0; slot < this.engine.mapping.cacheBlocks; slot++) if (this.candidate(slot)) slots.push(slot);
    return sortByOrigin(slots, table.originOf);
  }

  /** Waits `ms` on the timebase, or less if stop(), a flush or a settings change wakes it. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        cancel();
        this.sleepers.delete(done);
        resolve();
      };
      const cancel = this.time.after(ms, done);
      this.sleepers.add(done);
    });
  }

  private wakeSleepers(): void {
    for (const wake of [...this.sleepers]) wake();
  }

  /** A background write may start: waits for the rate limiter; false if the round should end instead. */
  private async backgroundTurn(bytes: number): Promise<boolean> {
    for (;;) {
      if (this.stopped || this.flushing > 0) return false;
      const now = this.time.now();
      let delay = this.limiter.delayMs(now);
      const pace = this.paceRate(now);
      if (pace > 0) {
        // Entering a paced spell starts from an empty bucket: no debt or savings from an earlier one.
        if (this.pacedBytesPerSecond === 0) this.pace.set(pace, 0);
        else this.pace.retune(pace, now);
        // Re-check soon: clients going idle or dirty blocks passing the ceiling end the pacing.
        delay = Math.max(delay, Math.min(this.pace.delayMs(now), PACE_RECHECK_MS));
      }
      this.pacedBytesPerSecond = pace;
      if (delay === 0) break;
      await this.sleep(delay);
    }
    // Foreground first: let pending client I/O callbacks run before this write starts.
    if (this.engine.inflight > 0) await new Promise((resolve) => setImmediate(resolve));
    if (this.stopped || this.flushing > 0) return false;
    this.limiter.take(bytes, this.time.now());
    if (this.pacedBytesPerSecond > 0) this.pace.take(bytes, this.time.now());
    return true;
  }

  private candidate(slot: number): boolean {
    const table = this.engine.table;
    return (table.state[slot]! & (VALID | DIRTY)) === (VALID | DIRTY) && !this.engine.locks.isBusy(table.originOf[slot]!);
  }

  private pickFromNoRoomSets(wanted: number): number[] {
    const slots: number[] = [];
    const mapping = this.engine.mapping;
    for (const set of this.noRoomSets) {
      this.noRoomSets.delete(set);
      const first = mapping.firstBlockOf(set);
      for (let slot = first; slot < first + mapping.assoc && slots.length < wanted; slot++) {
        if (this.candidate(slot)) slots.push(slot);
      }
      if (slots.length >= wanted) break;
    }
    return slots;
  }

  /**
   * Scans from a rotating cursor (a window, or a whole pass) for dirty, unlocked blocks;
   * `durable`: only those whose latest record on disk says dirty. The cursor moves only
   * past what was scanned, so a durable-only scan skips nothing for the next one.
   */
  private pickAnywhere(wanted: number, slots: number[], wholePass = false, durable = false): void {
    const blocks = this.engine.mapping.cacheBlocks;
    const state = this.engine.table.state;
    const chosen = new Set(slots);
    const scanMax = wholePass ? blocks : Math.min(blocks, Math.max(wanted * 64, 4096));
    let cursor = this.cursor;
    for (let scanned = 0; scanned < scanMax && slots.length < wanted; scanned++) {
      const slot = cursor;
      cursor = (cursor + 1) % blocks;
      if (durable && (state[slot]! & PERSISTED_DIRTY) === 0) continue;
      if (!chosen.has(slot) && this.candidate(slot)) slots.push(slot);
    }
    if (!durable || slots.length > 0) this.cursor = cursor;
  }

  /**
   * One round: commit dirty state, write runs back in origin order, commit
   * clean state. A `background` round is rate-capped and yields to clients, and
   * when the engine commits periodically it leaves the clean state to that
   * commit: under sustained writes, a commit per 64-block round was 40 commits
   * (each flushing both devices) a second. Its slots are reusable only after
   * that commit (DIRTY_ON_DISK); a set that runs out of room commits sooner
   * (noteNoRoom).
   */
  private async writeback(slots: number[], background = false): Promise<void> {
    const engine = this.engine;
    // The dirty records must be durable before the origin is written (see the file comment).
    if (!this.dirtyDurable(slots)) await engine.commit();
    const failure = await this.writeRound(slots, background);
    if (!background || !engine.commitsPeriodically) await engine.commit();
    if (failure) throw failure.reason;
  }

  /**
   * True when every block's dirty record is durable now: its latest record says
   * dirty and no commit that might have staged it is still running. A commit
   * started later does not change that (it can only stage a newer record, which
   * says dirty too, while the block is dirty).
   */
  private dirtyDurable(slots: number[]): boolean {
    const table = this.engine.table;
    return !this.engine.commitInFlight && slots.every((slot) => table.has(slot, PERSISTED_DIRTY));
  }

  /**
   * Sorts the blocks by origin block (a flush's come sorted: `flush` is given),
   * merges contiguous ones into runs and writes them back; returns the first failure.
   */
  private async writeRound(slots: number[], background: boolean, flush?: FlushHooks): Promise<{ reason: unknown } | undefined> {
    const engine = this.engine;
    const table = engine.table;
    if (!flush) sortByOrigin(slots, table.originOf);
    const runs: number[][] = [];
    const runBlocksMax = Math.max(1, Math.floor(WRITEBACK_RUN_BYTES_MAX / engine.blockBytes));
    for (const slot of slots) {
      const run = runs[runs.length - 1];
      const previous = run?.[run.length - 1];
      if (run && previous !== undefined && table.originOf[slot] === table.originOf[previous]! + 1 && run.length < runBlocksMax) run.push(slot);
      else runs.push([slot]);
    }
    return this.writeChunks(runs, background, flush);
  }

  /**
   * Writes the runs back in origin order, in chunks. A chunk's blocks are locked,
   * the runs still dirty are read from the cache (one batched read when the
   * cache device can do it and the slots are scattered), written to the origin
   * and marked clean, and the locks released when every write has settled.
   * Chunks take their locks one after another and issue their origin writes one
   * after another, both in origin order.
   *
   * A flush (not `background`): chunks of whole runs up to
   * WRITEBACK_CHUNK_BYTES_MAX, WRITEBACK_CHUNKS_INFLIGHT at once, so later chunks
   * are read while earlier ones are written; a chunk issues its runs together,
   * so single-block runs reach the origin device in one turn and are batched.
   * A background round: one run per chunk, at most writebackConcurrency in
   * flight (one while clients wait); each waits for the rate limiter and lets
   * client I/O run before it takes its locks, as before.
   * Returns the first failure (every run is attempted).
   */
  private async writeChunks(runs: number[][], background: boolean, flush?: FlushHooks): Promise<{ reason: unknown } | undefined> {
    const chunkBlocksMax = background ? 1 : Math.max(1, Math.floor(WRITEBACK_CHUNK_BYTES_MAX / this.engine.blockBytes));
    const round: RoundState = { failure: undefined, pieces: pieceDeviceOf(this.engine.cacheDevice) };
    const inflight = new Set<Promise<void>>();
    let locked: Promise<void> = Promise.resolve();
    let issued: Promise<void> = Promise.resolve();
    for (let first = 0; first < runs.length;) {
      let end = first;
      for (let blocks = 0; end < runs.length && (end === first || blocks + runs[end]!.length <= chunkBlocksMax); end++) blocks += runs[end]!.length;
      const chunk = runs.slice(first, end);
      first = end;
      const concurrency = !background ? WRITEBACK_CHUNKS_INFLIGHT : this.engine.inflight > 0 ? 1 : this.settings.writebackConcurrency;
      while (inflight.size >= concurrency) await Promise.race(inflight);
      // A background round that must end leaves the remaining runs dirty for a later round.
      if (background && !(await this.backgroundTurn(chunk[0]!.length * this.engine.blockBytes))) break;
      if (flush?.signal?.aborted) break;
      const turn = { previousLocked: locked, previousIssued: issued, locked: () => {}, issued: () => {} };
      locked = new Promise((resolve) => { turn.locked = resolve; });
      issued = new Promise((resolve) => { turn.issued = resolve; });
      const done: Promise<void> = this.writeChunk(chunk, turn, round)
        .then(() => flush?.progress?.(this.engine.table.dirtyCount))
        .catch((reason: unknown) => { round.failure ??= { reason }; })
        .finally(() => inflight.delete(done));
      inflight.add(done);
    }
    await Promise.all(inflight);
    return round.failure;
  }

  /**
   * One chunk: locks its blocks (after the previous chunk has locked its own),
   * reads the runs still dirty, writes them (after the previous chunk has issued
   * its writes) and marks them clean; releases the locks when every write has
   * settled. A run whose blocks changed meanwhile is left to a later round.
   */
  private async writeChunk(chunk: number[][], turn: ChunkTurn, round: RoundState): Promise<void> {
    const engine = this.engine;
    const table = engine.table;
    const blockBytes = engine.blockBytes;
    const origins = chunk.map((run) => run.map((slot) => table.originOf[slot]!));
    const held: number[] = [];
    const writes: Promise<void>[] = [];
    let memory: SharedArrayBuffer | undefined;
    try {
      try {
        await turn.previousLocked;
        for (const originBlocks of origins) {
          for (const originBlock of originBlocks) {
            const wait = engine.locks.acquire(originBlock, true);
            if (wait) await wait;
            held.push(originBlock);
          }
        }
      } finally {
        turn.locked();
      }
      // Re-check under the locks: a block may have been invalidated or cleaned meanwhile (and
      // made dirty again: then its latest record is not dirty and it waits for a later round),
      // and a slot of a run may hold another block now (freed and reused since the round sorted
      // its runs): a run is written as one origin write at its first block's place, so its
      // blocks must still be consecutive, or it waits for a later round. Writing such a run put
      // one block's data at another's place and called it clean (test-ram-coherence lost a write).
      const live: number[] = [];
      let liveBlocks = 0;
      let scattered = 0;
      chunk.forEach((run, r) => {
        const blocks = origins[r]!;
        if (!run.every((slot, i) => blocks[i] === blocks[0]! + i && engine.index.get(blocks[i]!) === slot &&
          table.has(slot, DIRTY) && table.has(slot, PERSISTED_DIRTY))) return;
        live.push(r);
        liveBlocks += run.length;
        for (let i = 0; i < run.length; i++) if (i === 0 || run[i] !== run[i - 1]! + 1) scattered++;
      });
      // Live runs are packed in origin order: each is one contiguous piece of `data`
      // (and of `checksums`, the blocks' CRC-32C when the batched read computed them).
      let data: Buffer | undefined;
      let checksums: Uint32Array | undefined;
      if (round.pieces && scattered >= SCATTER_IO_PIECES_MIN) {
        const positions = new Float64Array(liveBlocks);
        const lengths = new Uint32Array(liveBlocks).fill(blockBytes);
        let at = 0;
        for (const r of live) for (const slot of chunk[r]!) positions[at++] = engine.internals.slotOffset(slot);
        try {
          const shared = scatterIo.memory(liveBlocks * blockBytes);
          checksums = await round.pieces.readPieces(positions, lengths, shared, true);
          memory = shared;
          data = Buffer.from(shared, 0, liveBlocks * blockBytes);
        } catch {
          // Read again through the engine below: that path counts cache errors (and may succeed).
          memory = undefined;
        }
      }
      const readOk = live.map(() => data !== undefined);
      if (data === undefined) {
        data = Buffer.allocUnsafe(liveBlocks * blockBytes);
        const target = data;
        let at = 0;
        const reads = live.map((r) => {
          const run = chunk[r]!;
          const start = at;
          at += run.length * blockBytes;
          return this.readRun(run, target.subarray(start, at));
        });
        (await Promise.allSettled(reads)).forEach((result, i) => {
          if (result.status === 'fulfilled') readOk[i] = true;
          else round.failure ??= { reason: result.reason };
        });
      }
      await turn.previousIssued;
      try {
        let at = 0;
        for (let i = 0; i < live.length; i++) {
          const r = live[i]!;
          const run = chunk[r]!;
          const piece = data.subarray(at * blockBytes, (at + run.length) * blockBytes);
          const crcs = checksums?.subarray(at, at + run.length);
          at += run.length;
          if (!readOk[i]) continue;
          writes.push(this.writeRun(run, origins[r]!, piece, crcs).catch((reason: unknown) => {
            round.failure ??= { reason };
            memory = undefined; // a failed write's buffer is not reused
          }));
        }
      } finally {
        turn.issued();
      }
      await Promise.all(writes);
    } finally {
      turn.locked();
      turn.issued();
      for (const originBlock of held) engine.locks.release(originBlock, true);
      if (memory) scatterIo.recycle(memory);
    }
  }

  /** Reads a run's slots into `target` block by block (adjacent slots in one read) through the engine. */
  private async readRun(run: number[], target: Buffer): Promise<void> {
    const engine = this.engine;
    const blockBytes = engine.blockBytes;
    const reads: Promise<void>[] = [];
    for (let first = 0; first < run.length;) {
      let end = first + 1;
      while (end < run.length && run[end] === run[end - 1]! + 1) end++;
      reads.push(engine.internals.cacheRead(target.subarray(first * blockBytes, end * blockBytes), engine.internals.slotOffset(run[first]!)));
      first = end;
    }
    await Promise.all(reads);
  }

  /** Writes one run (its data read, its blocks locked) to the origin and marks its blocks clean; `crcs`: the blocks' CRC-32C if known. */
  private async writeRun(run: number[], originBlocks: number[], data: Buffer, crcs: Uint32Array | undefined): Promise<void> {
    const engine = this.engine;
    const table = engine.table;
    const blockBytes = engine.blockBytes;
    const lastLength = engine.internals.blockLength(originBlocks[originBlocks.length - 1]!);
    const length = (run.length - 1) * blockBytes + lastLength;
    await engine.writebackWrite(data.subarray(0, length), originBlocks[0]! * blockBytes);
    this.meter.add(length, this.time.now());
    run.forEach((slot, i) => {
      table.setDirty(slot, false);
      const set = engine.mapping.setOfCacheBlock(slot);
      if (table.dirtyPerSet[set] === 0) this.dirtySinceMs[set] = -1;
      table.state[slot]! |= HAS_CRC;
      table.setCrc(slot, crcs ? crcs[i]! : crc32c(data.subarray(i * blockBytes, (i + 1) * blockBytes)));
      table.markPending(slot);
    });
    engine.stats.writebacks += run.length;
    engine.stats.writebackBytes += length;
  }
}

/** Slots below this pack with a 32-bit origin block into one exact double (32 + 21 bits). */
const PACKED_SLOTS_MAX = 2 ** 21;

/**
 * Sorts `slots` in place by origin block (ties by slot) and returns it. A flush
 * sorts every dirty slot: when origins are 32-bit and slots fit in 21 bits, each
 * pair is packed into one double and sorted natively (no comparator calls).
 */
export function sortByOrigin(slots: number[], originOf: Float64Array | Uint32Array): number[] {
  if (!(originOf instanceof Uint32Array) || originOf.length > PACKED_SLOTS_MAX) {
    return slots.sort((a, b) => originOf[a]! - originOf[b]! || a - b);
  }
  const keys = new Float64Array(slots.length);
  for (let i = 0; i < slots.length; i++) keys[i] = originOf[slots[i]!]! * PACKED_SLOTS_MAX + slots[i]!;
  keys.sort();
  for (let i = 0; i < keys.length; i++) slots[i] = keys[i]! % PACKED_SLOTS_MAX;
  return slots;
}

/** What a flush round's chunks report to: progress after each chunk; interruption stops issuing chunks. */
interface FlushHooks {
  readonly progress?: (dirtyBlocks: number) => void;
  readonly signal?: AbortSignal;
}

/** Shared state of one round's chunks. */
interface RoundState {
  failure: { reason: unknown } | undefined;
  /** The cache device's batched reader, if it has one. */
  readonly pieces: PieceDevice | undefined;
}

/** A chunk's place in the round's two orderings: locking and issuing origin writes. */
interface ChunkTurn {
  readonly previousLocked: Promise<void>;
  readonly previousIssued: Promise<void>;
  locked: () => void;
  issued: () => void;
}
