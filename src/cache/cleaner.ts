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
import { DIRTY_THRESHOLD_PERCENT_DEFAULT, WRITEBACK_INFLIGHT_MAX, MiB } from '../constants.js';
import { crc32c } from '../stdx/checksum.js';
import { assert } from '../stdx/assert.js';
import type { CacheEngine } from './engine.js';
import { DIRTY, HAS_CRC, VALID } from './slot-table.js';

/** Largest single origin write a run of contiguous dirty blocks is merged into. */
export const WRITEBACK_RUN_BYTES_MAX = 4 * MiB;
/** Below the threshold by this many percentage points before threshold cleaning stops (hysteresis). */
const THRESHOLD_HYSTERESIS_PERCENT = 1;

export interface CleanerSettings {
  /** Percent of cache blocks that may be dirty before background writeback starts. */
  dirtyThresholdPercent: number;
  /** Dirty blocks written back per round. */
  writebackInflightMax: number;
}

export class Cleaner {
  readonly settings: CleanerSettings;
  private round: Promise<void> | undefined;
  private readonly noRoomSets = new Set<number>();
  private cursor = 0;
  private stopped = false;

  constructor(private readonly engine: CacheEngine, settings: Partial<CleanerSettings> = {}) {
    this.settings = {
      dirtyThresholdPercent: settings.dirtyThresholdPercent ?? DIRTY_THRESHOLD_PERCENT_DEFAULT,
      writebackInflightMax: settings.writebackInflightMax ?? WRITEBACK_INFLIGHT_MAX,
    };
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
    if (this.round || this.stopped) return;
    // Assign before the round can finish: a round that completes at once must still clear itself.
    const round = this.runRounds().finally(() => {
      if (this.round === round) this.round = undefined;
    });
    this.round = round;
  }

  private async runRounds(): Promise<void> {
    {
      try {
        while (!this.stopped && (this.noRoomSets.size > 0 || this.engine.table.dirtyCount > this.thresholdBlocks())) {
          const target = Math.max(0, this.thresholdBlocks() - Math.floor((this.engine.mapping.cacheBlocks * THRESHOLD_HYSTERESIS_PERCENT) / 100));
          const wanted = Math.min(this.settings.writebackInflightMax, Math.max(1, this.engine.table.dirtyCount - target));
          const slots = this.pickFromNoRoomSets(wanted);
          if (slots.length < wanted && this.engine.table.dirtyCount > this.thresholdBlocks()) this.pickAnywhere(wanted, slots);
          if (slots.length === 0) break;
          await this.writeback(slots);
        }
      } catch (error) {
        this.engine.internals.log(`writeback failed: ${(error as Error).message}`);
      }
    }
  }

  /** Writes back every dirty block; `progress` gets the dirty blocks left after each round. */
  async writebackAll(progress?: (dirtyBlocks: number) => void): Promise<void> {
    while (this.round) await this.round;
    const table = this.engine.table;
    let idleRounds = 0;
    while (table.dirtyCount > 0) {
      const slots: number[] = [];
      this.pickAnywhere(this.settings.writebackInflightMax * 4, slots, true);
      if (slots.length === 0) {
        // Every dirty block is busy with a client request; let them finish.
        idleRounds++;
        assert(idleRounds < 100_000, 'writeback made no progress');
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      idleRounds = 0;
      await this.writeback(slots);
      progress?.(table.dirtyCount);
    }
    await this.engine.commit();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    while (this.round) await this.round;
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

  /** One round: commit dirty state, write runs back in origin order, commit clean state. */
  private async writeback(slots: number[]): Promise<void> {
    const engine = this.engine;
    const table = engine.table;
    // The dirty records must be durable before the origin is written (see the file comment).
    await engine.commit();
    slots.sort((a, b) => table.originOf[a]! - table.originOf[b]!);
    const runs: number[][] = [];
    const runBlocksMax = Math.max(1, Math.floor(WRITEBACK_RUN_BYTES_MAX / engine.blockBytes));
    for (const slot of slots) {
      const run = runs[runs.length - 1];
      const previous = run?.[run.length - 1];
      if (run && previous !== undefined && table.originOf[slot] === table.originOf[previous]! + 1 && run.length < runBlocksMax) run.push(slot);
      else runs.push([slot]);
    }
    const results = await Promise.allSettled(runs.map((run) => this.writebackRun(run)));
    await engine.commit();
    const failure = results.find((result) => result.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failure) throw failure.reason;
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
      await Promise.all(run.map((slot, i) => engine.internals.cacheRead(buffer.subarray(i * blockBytes, (i + 1) * blockBytes), engine.internals.slotOffset(slot))));
      const lastLength = engine.internals.blockLength(originBlocks[originBlocks.length - 1]!);
      const length = (run.length - 1) * blockBytes + lastLength;
      await engine.writebackWrite(buffer.subarray(0, length), originBlocks[0]! * blockBytes);
      run.forEach((slot, i) => {
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
