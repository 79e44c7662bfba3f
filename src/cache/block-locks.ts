// Per-origin-block locks: the engine's wait queues (flashcache's pending jobs,
// dm-cache's bio lists). A request that touches a busy block waits for it, so
// two conflicting operations never run on one block at once.
//
// Shared holders (read hits) may overlap each other; an exclusive holder (fill,
// write, writeback, invalidation) excludes everyone. Waiters are served in
// arrival order, so writers are not starved by a stream of readers.
// Concurrency: single-threaded; acquire returns undefined when granted at once
// (no promise on the fast path), otherwise a promise resolved on grant.
//
// Ranges: a read of a run of hits (a 1 MiB read is 256 blocks) holds one shared
// range instead of an entry per block, and a write or fill of a run holds one
// exclusive range. A range is taken only over blocks with no entry (no holder
// but other ranges, no waiter); shared ranges may overlap each other, an
// exclusive range overlaps no other range. Any later acquire of a block a range
// covers first turns the ranges' holds on that block into an entry
// ("materialises" them: the entry counts one shared holder per covering shared
// range, or is held exclusively for the exclusive range), so from then on the
// block behaves as if locked one by one, and releasing the range releases
// those entries.
import { assert } from '../stdx/assert.js';

interface Waiter {
  readonly exclusive: boolean;
  readonly grant: () => void;
}

interface LockEntry {
  shared: number;
  exclusive: boolean;
  waiters: Waiter[];
}

/** A hold on blocks [start, end); `materialised`: its blocks that have entries since. */
export interface HeldRange {
  readonly start: number;
  readonly end: number;
  readonly exclusive: boolean;
  readonly materialised: number[];
}

export class BlockLocks {
  private readonly entries = new Map<number, LockEntry>();
  private readonly spare: LockEntry[] = [];
  /** Ranges held now (few: at most one per request in flight). */
  private readonly ranges: HeldRange[] = [];

  /** True when any operation holds or waits for the block. */
  isBusy(originBlock: number): boolean {
    return this.entries.has(originBlock) || this.coveringRanges(originBlock, false) !== 0;
  }

  /** Blocks with an entry, plus the blocks of ranges (counted once per range). */
  get lockedBlocks(): number {
    let blocks = this.entries.size;
    for (const range of this.ranges) blocks += range.end - range.start;
    return blocks;
  }

  /**
   * True when `acquireRange(start, end, exclusive)` may be called: no block of the range has
   * an entry, and no range overlapping it is exclusive (or, for an exclusive one, exists).
   */
  rangeAvailable(start: number, end: number, exclusive = false): boolean {
    for (const range of this.ranges) {
      if ((exclusive || range.exclusive) && range.start < end && start < range.end) return false;
    }
    if (this.entries.size === 0) return true;
    for (let block = start; block < end; block++) if (this.entries.has(block)) return false;
    return true;
  }

  /** A shared (or exclusive) hold on every block of [start, end), granted at once (see the file comment). */
  acquireRange(start: number, end: number, exclusive = false): HeldRange {
    assert(start < end && this.rangeAvailable(start, end, exclusive), 'a range over blocks with entries or conflicting ranges');
    const range: HeldRange = { start, end, exclusive, materialised: [] };
    this.ranges.push(range);
    return range;
  }

  releaseRange(range: HeldRange): void {
    const at = this.ranges.indexOf(range);
    assert(at >= 0, 'releasing a range not held');
    this.ranges[at] = this.ranges[this.ranges.length - 1]!;
    this.ranges.pop();
    for (const block of range.materialised) this.release(block, range.exclusive);
  }

  /**
   * How many ranges cover `originBlock` (an exclusive one is alone: -1); with `materialise`,
   * each notes that the block has an entry now.
   */
  private coveringRanges(originBlock: number, materialise: boolean): number {
    let count = 0;
    for (const range of this.ranges) {
      if (originBlock < range.start || originBlock >= range.end) continue;
      if (materialise) range.materialised.push(originBlock);
      if (range.exclusive) return -1;
      count++;
    }
    return count;
  }

  acquire(originBlock: number, exclusive: boolean): Promise<void> | undefined {
    let entry = this.entries.get(originBlock);
    if (!entry) {
      const fresh = this.spare.pop() ?? { shared: 0, exclusive: false, waiters: [] };
      const ranges = this.ranges.length === 0 ? 0 : this.coveringRanges(originBlock, true);
      if (ranges === 0) {
        if (exclusive) fresh.exclusive = true;
        else fresh.shared = 1;
        this.entries.set(originBlock, fresh);
        return undefined;
      }
      if (ranges < 0) fresh.exclusive = true; // held for the exclusive range
      else fresh.shared = ranges;
      this.entries.set(originBlock, fresh);
      entry = fresh;
    }
    if (!exclusive && !entry.exclusive && entry.waiters.length === 0) {
      entry.shared++;
      return undefined;
    }
    return new Promise<void>((grant) => entry.waiters.push({ exclusive, grant }));
  }

  release(originBlock: number, exclusive: boolean): void {
    const entry = this.entries.get(originBlock);
    assert(entry, `releasing an unlocked block ${originBlock}`);
    if (exclusive) {
      assert(entry.exclusive, 'releasing an exclusive lock not held');
      entry.exclusive = false;
    } else {
      assert(entry.shared > 0, 'releasing a shared lock not held');
      entry.shared--;
    }
    if (entry.exclusive || entry.shared > 0) return;
    if (entry.waiters.length === 0) {
      this.entries.delete(originBlock);
      if (this.spare.length < 1024) this.spare.push(entry);
      return;
    }
    // Grant the head waiter; if it is shared, grant every shared waiter behind it too.
    const head = entry.waiters.shift()!;
    if (head.exclusive) {
      entry.exclusive = true;
      head.grant();
      return;
    }
    entry.shared = 1;
    head.grant();
    while (entry.waiters.length > 0 && !entry.waiters[0]!.exclusive) {
      entry.shared++;
      entry.waiters.shift()!.grant();
    }
  }
}
