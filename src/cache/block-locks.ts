// Per-origin-block locks: the engine's wait queues (flashcache's pending jobs,
// dm-cache's bio lists). A request that touches a busy block waits for it, so
// two conflicting operations never run on one block at once.
//
// Shared holders (read hits) may overlap each other; an exclusive holder (fill,
// write, writeback, invalidation) excludes everyone. Waiters are served in
// arrival order, so writers are not starved by a stream of readers.
// Concurrency: single-threaded; acquire returns undefined when granted at once
// (no promise on the fast path), otherwise a promise resolved on grant.
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

export class BlockLocks {
  private readonly entries = new Map<number, LockEntry>();
  private readonly spare: LockEntry[] = [];

  /** True when any operation holds or waits for the block. */
  isBusy(originBlock: number): boolean {
    return this.entries.has(originBlock);
  }

  get lockedBlocks(): number {
    return this.entries.size;
  }

  acquire(originBlock: number, exclusive: boolean): Promise<void> | undefined {
    const entry = this.entries.get(originBlock);
    if (!entry) {
      const fresh = this.spare.pop() ?? { shared: 0, exclusive: false, waiters: [] };
      if (exclusive) fresh.exclusive = true;
      else fresh.shared = 1;
      this.entries.set(originBlock, fresh);
      return undefined;
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
