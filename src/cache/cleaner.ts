// Background writeback of dirty blocks (flashcache's cleaning, dm-cache's
// writeback): keeps the dirty share under a threshold, makes room in sets that
// have none, and writes everything back on demand (flush, detach).
//
// A round picks dirty, unlocked blocks, sorts them by origin block and writes
// contiguous runs to the origin as single large writes. Before a round every
// chosen block's dirty state is committed (so a crash mid-writeback finds the
// dirty record and the origin write needs no intent); after it, one commit
// flushes the origin and records the blocks clean, which frees their slots for
// reuse. Concurrency: one round at a time; each block's exclusive lock is held
// from the cache read until the block is marked clean.
//
// Cleaning policy (docs/WRITEBACK.md):
//   why a round runs        rate cap   yields to clients   blocks chosen
//   no room in a set        no         no                  that set's dirty blocks
//   dirty > threshold       yes        yes                 a window of slots, sorted
//   dirty > max age, idle   yes        yes                 the aged blocks, sorted
//   flush / detach          no         no                  every dirty block, sorted
// "Yields to clients": while client requests are in flight a background round
// keeps one origin write in flight (instead of writebackConcurrency) and lets
// pending I/O run before each write. Time comes from an injectable clock; the
// age scan's timer is unref'd and every timer stops in stop().
import {
  DIRTY_THRESHOLD_PERCENT_DEFAULT, WRITEBACK_INFLIGHT_MAX, MiB, DIRTY_MAX_AGE_MS_DEFAULT, WRITEBACK_CONCURRENCY_DEFAULT,
} from '../constants.js';
import { RateLimiter } from './rate-limiter.js';
import { RateMeter } from './rate-meter.js';
import { crc32c } from '../stdx/checksum.js';
import { assert } from '../stdx/assert.js';
import type { CacheEngine } from './engine.js';
import { DIRTY, HAS_CRC, PERSISTED_DIRTY, VALID } from './slot-table.js';

/** Largest single origin write a run of contiguous dirty blocks is merged into. */
export const WRITEBACK_RUN_BYTES_MAX = 4 * MiB;
/** Below the threshold by this many percentage points before threshold cleaning stops (hysteresis). */
const THRESHOLD_HYSTERESIS_PERCENT = 1;
/** A flush writes back at most this much per round (two commits a round; sorted runs need big rounds). */
export const FLUSH_ROUND_BYTES_MAX = 64 * MiB;
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
}

/** Milliseconds on a monotonic clock. */
export type Clock = () => number;

export class Cleaner {
  readonly settings: CleanerSettings;
  private round: Promise<void> | undefined;
  private readonly noRoomSets = new Set<number>();
  private cursor = 0;
  private stopped = false;
  /** Flushes in progress: background rounds step aside while any runs. */
  private flushing = 0;
  readonly limiter = new RateLimiter();
  /** Bytes written back per second (every kind of round). */
  readonly meter = new RateMeter();
  /** When the age scan first saw each slot dirty (-1: not dirty when last seen). */
  private readonly dirtySinceMs: Float64Array;
  private agedSlots: number[] = [];
  private ageTimer: NodeJS.Timeout | undefined;
  private readonly sleepers = new Set<() => void>();

  constructor(private readonly engine: CacheEngine, settings: Partial<CleanerSettings> = {}, readonly clock: Clock = () => performance.now()) {
    this.settings = {
      dirtyThresholdPercent: settings.dirtyThresholdPercent ?? DIRTY_THRESHOLD_PERCENT_DEFAULT,
      writebackInflightMax: settings.writebackInflightMax ?? WRITEBACK_INFLIGHT_MAX,
      writebackConcurrency: settings.writebackConcurrency ?? WRITEBACK_CONCURRENCY_DEFAULT,
      dirtyMaxAgeMs: settings.dirtyMaxAgeMs ?? DIRTY_MAX_AGE_MS_DEFAULT,
      writebackRateBytesPerSecond: settings.writebackRateBytesPerSecond ?? 0,
      writebackRateIops: settings.writebackRateIops ?? 0,
    };
    this.dirtySinceMs = new Float64Array(engine.mapping.cacheBlocks).fill(-1);
    this.applySettings();
  }

  /** Call after changing `settings`: re-arms the limiter and the age scan, and re-checks the threshold. */
  applySettings(): void {
    assert(this.settings.writebackConcurrency >= 1 && this.settings.writebackInflightMax >= 1);
    this.limiter.set(this.settings.writebackRateBytesPerSecond, this.settings.writebackRateIops);
    if (this.ageTimer) clearInterval(this.ageTimer);
    this.ageTimer = undefined;
    this.agedSlots = [];
    if (this.settings.dirtyMaxAgeMs > 0 && !this.stopped) {
      const interval = Math.min(AGE_SCAN_INTERVAL_MS_MAX, Math.max(AGE_SCAN_INTERVAL_MS_MIN, this.settings.dirtyMaxAgeMs / 4));
      this.ageTimer = setInterval(() => this.scanAges(), interval);
      this.ageTimer.unref();
    }
    this.wakeSleepers();
    if (!this.stopped) this.noteDirty();
  }

  /** Bytes per second written back now, and the seconds a flush would take at that rate (null: unknown). */
  estimate(): { rateBytesPerSecond: number; etaSeconds: number | null } {
    const now = this.clock();
    const current = this.meter.rate(now);
    let rate = current > 0 ? current : this.meter.busyRate;
    if (this.limiter.bytesPerSecond > 0 && current === 0) rate = rate > 0 ? Math.min(rate, this.limiter.bytesPerSecond) : this.limiter.bytesPerSecond;
    const dirtyBytes = this.engine.table.dirtyCount * this.engine.blockBytes;
    const etaSeconds = dirtyBytes === 0 ? 0 : rate > 0 ? dirtyBytes / rate : null;
    return { rateBytesPerSecond: current, etaSeconds };
  }

  /** Notes every dirty slot's age; schedules an age round when some are too old and clients are idle. */
  private scanAges(): void {
    const now = this.clock();
    const table = this.engine.table;
    const aged: number[] = [];
    for (let slot = 0; slot < this.dirtySinceMs.length; slot++) {
      if (!table.has(slot, DIRTY)) this.dirtySinceMs[slot] = -1;
      else if (this.dirtySinceMs[slot]! < 0) this.dirtySinceMs[slot] = now;
      else if (now - this.dirtySinceMs[slot]! >= this.settings.dirtyMaxAgeMs) aged.push(slot);
    }
    aged.sort((a, b) => table.originOf[a]! - table.originOf[b]!);
    this.agedSlots = aged;
    if (aged.length > 0 && this.engine.inflight === 0) this.schedule();
  }

  get running(): boolean {
    return this.round !== undefined;
  }

  private thresholdBlocks(): number {
    return Math.floor((this.engine.mapping.cacheBlocks * this.settings.dirtyThresholdPercent) / 100);
  }

  /** Called after writes: start a round if the dirty share is over the threshold. */
  noteDirty(): void {
    if (this.engine.table.dirtyCount > this.thresholdBlocks()) this.schedule();
  }

  /** Called when a set had no evictable block: write back some of its dirty blocks. */
  noteNoRoom(set: number): void {
    if (this.engine.table.dirtyPerSet[set]! === 0) return;
    this.noRoomSets.add(set);
    this.schedule();
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
          const target = Math.max(0, this.thresholdBlocks() - Math.floor((this.engine.mapping.cacheBlocks * THRESHOLD_HYSTERESIS_PERCENT) / 100));
          const wanted = Math.min(this.settings.writebackInflightMax, Math.max(1, this.engine.table.dirtyCount - target));
          slots = this.pickFromNoRoomSets(wanted);
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
    }
  }

  /**
   * Writes back every dirty block, in origin order, in rounds of up to
   * FLUSH_ROUND_BYTES_MAX; `progress` gets the dirty blocks left after each
   * round. Not rate-capped. When `signal` aborts, it stops after the current
   * round (what was written back is committed; the rest stays dirty).
   */
  async writebackAll(progress?: (dirtyBlocks: number) => void, signal?: AbortSignal): Promise<void> {
    this.flushing++;
    this.wakeSleepers();
    try {
      while (this.round) await this.round;
      const table = this.engine.table;
      const roundBlocks = Math.max(this.settings.writebackInflightMax, Math.floor(FLUSH_ROUND_BYTES_MAX / this.engine.blockBytes));
      let idleRounds = 0;
      while (table.dirtyCount > 0 && !signal?.aborted) {
        const sorted = this.dirtySorted();
        if (sorted.length === 0) {
          // Every dirty block is busy with a client request; let them finish.
          idleRounds++;
          assert(idleRounds < 100_000, 'writeback made no progress');
          await new Promise((resolve) => setTimeout(resolve, 1));
          continue;
        }
        idleRounds = 0;
        for (let start = 0; start < sorted.length && !signal?.aborted; start += roundBlocks) {
          await this.writeback(sorted.slice(start, start + roundBlocks));
          progress?.(table.dirtyCount);
        }
      }
      await this.engine.commit();
    } finally {
      this.flushing--;
      if (this.flushing === 0 && !this.stopped) this.noteDirty();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ageTimer) clearInterval(this.ageTimer);
    this.ageTimer = undefined;
    this.wakeSleepers();
    while (this.round) await this.round;
  }

  /** Every dirty, unlocked block, sorted by origin block. */
  private dirtySorted(): number[] {
    const table = this.engine.table;
    const slots: number[] = [];
    for (let slot = 0; slot < this.engine.mapping.cacheBlocks; slot++) if (this.candidate(slot)) slots.push(slot);
    return slots.sort((a, b) => table.originOf[a]! - table.originOf[b]!);
  }

  /** Waits `ms` (unref'd), or less if stop(), a flush or a settings change wakes it. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
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
      const delay = this.limiter.delayMs(this.clock());
      if (delay === 0) break;
      await this.sleep(delay);
    }
    // Foreground first: let pending client I/O callbacks run before this write starts.
    if (this.engine.inflight > 0) await new Promise((resolve) => setImmediate(resolve));
    if (this.stopped || this.flushing > 0) return false;
    this.limiter.take(bytes, this.clock());
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

  /** Scans from a rotating cursor (a whole pass at most) for dirty, unlocked blocks. */
  private pickAnywhere(wanted: number, slots: number[], wholePass = false): void {
    const blocks = this.engine.mapping.cacheBlocks;
    const chosen = new Set(slots);
    const scanMax = wholePass ? blocks : Math.min(blocks, Math.max(wanted * 64, 4096));
    for (let scanned = 0; scanned < scanMax && slots.length < wanted; scanned++) {
      const slot = this.cursor;
      this.cursor = (this.cursor + 1) % blocks;
      if (!chosen.has(slot) && this.candidate(slot)) slots.push(slot);
    }
  }

  /**
   * One round: commit dirty state, write runs back in origin order, commit
   * clean state. A `background` round is rate-capped and yields to clients.
   */
  private async writeback(slots: number[], background = false): Promise<void> {
    const engine = this.engine;
    const table = engine.table;
    // The dirty records must be durable before the origin is written (see the file comment).
    // They already are when every chosen block's latest record says dirty and no commit
    // that might have staged it is still running; then the extra commit is skipped.
    if (engine.commitInFlight || slots.some((slot) => !table.has(slot, PERSISTED_DIRTY))) await engine.commit();
    slots.sort((a, b) => table.originOf[a]! - table.originOf[b]!);
    const runs: number[][] = [];
    const runBlocksMax = Math.max(1, Math.floor(WRITEBACK_RUN_BYTES_MAX / engine.blockBytes));
    for (const slot of slots) {
      const run = runs[runs.length - 1];
      const previous = run?.[run.length - 1];
      if (run && previous !== undefined && table.originOf[slot] === table.originOf[previous]! + 1 && run.length < runBlocksMax) run.push(slot);
      else runs.push([slot]);
    }
    const results = await this.writeRuns(runs, background);
    await engine.commit();
    const failure = results.find((result) => result.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failure) throw failure.reason;
  }

  /** Writes the runs in order, at most writebackConcurrency at once (one while clients wait, in the background). */
  private async writeRuns(runs: number[][], background: boolean): Promise<PromiseSettledResult<void>[]> {
    const results: PromiseSettledResult<void>[] = [];
    const inflight = new Set<Promise<void>>();
    for (const run of runs) {
      const concurrency = background && this.engine.inflight > 0 ? 1 : this.settings.writebackConcurrency;
      while (inflight.size >= concurrency) await Promise.race(inflight);
      // A background round that must end leaves the remaining runs dirty for a later round.
      if (background && !(await this.backgroundTurn(run.length * this.engine.blockBytes))) break;
      const write: Promise<void> = this.writebackRun(run).then(
        () => { results.push({ status: 'fulfilled', value: undefined }); },
        (reason: unknown) => { results.push({ status: 'rejected', reason }); },
      ).finally(() => inflight.delete(write));
      inflight.add(write);
    }
    await Promise.all(inflight);
    return results;
  }

  private async writebackRun(run: number[]): Promise<void> {
    const engine = this.engine;
    const table = engine.table;
    const originBlocks = run.map((slot) => table.originOf[slot]!);
    for (const originBlock of originBlocks) {
      const wait = engine.locks.acquire(originBlock, true);
      if (wait) await wait;
    }
    try {
      // Re-check under the locks: a block may have been invalidated or cleaned meanwhile.
      const live = run.every((slot, i) => engine.index.get(originBlocks[i]!) === slot && table.has(slot, DIRTY));
      if (!live) return; // the next round picks up what is still dirty
      const blockBytes = engine.blockBytes;
      const buffer = Buffer.allocUnsafe(run.length * blockBytes);
      // Adjacent slots (a sequential burst allocated in order) are read with one cache read.
      const reads: Promise<void>[] = [];
      for (let first = 0; first < run.length;) {
        let end = first + 1;
        while (end < run.length && run[end] === run[end - 1]! + 1) end++;
        reads.push(engine.internals.cacheRead(buffer.subarray(first * blockBytes, end * blockBytes), engine.internals.slotOffset(run[first]!)));
        first = end;
      }
      await Promise.all(reads);
      const lastLength = engine.internals.blockLength(originBlocks[originBlocks.length - 1]!);
      const length = (run.length - 1) * blockBytes + lastLength;
      await engine.writebackWrite(buffer.subarray(0, length), originBlocks[0]! * blockBytes);
      this.meter.add(length, this.clock());
      run.forEach((slot, i) => {
        this.dirtySinceMs[slot] = -1;
        table.setDirty(slot, false);
        table.state[slot]! |= HAS_CRC;
        table.dataCrc[slot] = crc32c(buffer.subarray(i * blockBytes, (i + 1) * blockBytes));
        table.markPending(slot);
      });
      engine.stats.writebacks += run.length;
      engine.stats.writebackBytes += length;
    } finally {
      for (const originBlock of originBlocks) engine.locks.release(originBlock, true);
    }
  }
}
