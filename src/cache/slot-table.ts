// The engine's in-memory view of every cache block ("slot"): which origin
// block it holds, its state bits, and the free lists per set. Typed arrays
// sized once at open; no allocation per request.
//
//   state bits      meaning
//   VALID           holds originOf[slot]; readable
//   DIRTY           newer than the origin (writeback mode only)
//   RESERVED        allocated to originOf[slot], data being written (not yet readable)
//   PERSISTED_DIRTY the latest staged record says dirty (so a write to the
//                   dirty block needs no new record)
//   DIRTY_ON_DISK   a dirty record of this slot may be on disk: the slot may not
//                   be reused for another block until a commit that records it
//                   otherwise has completed
//   PENDING         the on-disk record differs from memory; in the pending list
//   HAS_CRC         dataCrc[slot] is the checksum of the slot's current data
//   FREE_AFTER_COMMIT  emptied while DIRTY_ON_DISK; freed by the commit that clears it
//   FREE            in its set's free list
//
//        allocate              data written
//   FREE ---------> RESERVED ---------------> VALID (clean | DIRTY)
//     ^                 |  failure                 |  evict / invalidate
//     +-----------------+--------------------------+--> FREE, or FREE_AFTER_COMMIT
//                                                        while PERSISTED_DIRTY
import { assert } from '../stdx/assert.js';
import { SetMapping } from './set-mapping.js';

export const VALID = 1;
export const DIRTY = 2;
export const RESERVED = 4;
export const PERSISTED_DIRTY = 8;
export const PENDING = 16;
export const HAS_CRC = 32;
export const FREE_AFTER_COMMIT = 64;
export const DIRTY_ON_DISK = 256;
/** In its set's free list (guards against freeing a slot twice). */
export const FREE = 128;

export class SlotTable {
  /** Uint32 when every origin block number fits (origins under 16 TiB at 4 KiB blocks), else Float64. */
  readonly originOf: Float64Array | Uint32Array;
  readonly state: Uint16Array;
  readonly dataCrc: Uint32Array;
  /** Per set: free slots are freeStack[first .. first + freeCount[set]). */
  private readonly freeStack: Uint32Array;
  private readonly freeCount: Uint32Array;
  readonly dirtyPerSet: Uint32Array;
  private readonly pendingList: Uint32Array;
  private pendingCount = 0;
  private readonly freeAfterCommitList: number[] = [];
  validCount = 0;
  dirtyCount = 0;

  constructor(readonly mapping: SetMapping, originBlocks: number) {
    const blocks = mapping.cacheBlocks;
    this.originOf = originBlocks <= 2 ** 32 ? new Uint32Array(blocks) : new Float64Array(blocks);
    this.state = new Uint16Array(blocks);
    this.dataCrc = new Uint32Array(blocks);
    this.freeStack = new Uint32Array(blocks);
    this.freeCount = new Uint32Array(mapping.sets);
    this.dirtyPerSet = new Uint32Array(mapping.sets);
    this.pendingList = new Uint32Array(blocks);
  }

  get memoryBytes(): number {
    return this.originOf.byteLength + this.state.byteLength + this.dataCrc.byteLength + this.freeStack.byteLength
      + this.freeCount.byteLength + this.dirtyPerSet.byteLength + this.pendingList.byteLength;
  }

  has(slot: number, bits: number): boolean {
    return (this.state[slot]! & bits) !== 0;
  }

  /** Adds a slot to its set's free list (state must be empty of data bits). */
  pushFree(slot: number): void {
    assert((this.state[slot]! & (VALID | RESERVED | DIRTY_ON_DISK | DIRTY | FREE)) === 0, `freeing busy or free slot ${slot}`);
    this.state[slot]! |= FREE;
    const set = this.mapping.setOfCacheBlock(slot);
    const first = this.mapping.firstBlockOf(set);
    assert(this.freeCount[set]! < this.mapping.assoc);
    this.freeStack[first + this.freeCount[set]!] = slot;
    this.freeCount[set]!++;
  }

  /** Takes a free slot of `set`, or -1. */
  popFree(set: number): number {
    const count = this.freeCount[set]!;
    if (count === 0) return -1;
    this.freeCount[set] = count - 1;
    const slot = this.freeStack[this.mapping.firstBlockOf(set) + count - 1]!;
    assert(this.has(slot, FREE), 'free list holds a slot not marked free');
    this.state[slot]! &= ~FREE;
    return slot;
  }

  freeSlots(set: number): number {
    return this.freeCount[set]!;
  }

  markPending(slot: number): void {
    if ((this.state[slot]! & PENDING) !== 0) return;
    this.state[slot]! |= PENDING;
    this.pendingList[this.pendingCount++] = slot;
  }

  get pendingRecords(): number {
    return this.pendingCount;
  }

  /** Hands every pending slot to `visit` and empties the list. */
  drainPending(visit: (slot: number) => void): void {
    const count = this.pendingCount;
    this.pendingCount = 0;
    for (let i = 0; i < count; i++) {
      const slot = this.pendingList[i]!;
      this.state[slot]! &= ~PENDING;
      visit(slot);
    }
  }

  setDirty(slot: number, dirty: boolean): void {
    const was = (this.state[slot]! & DIRTY) !== 0;
    if (was === dirty) return;
    const set = this.mapping.setOfCacheBlock(slot);
    if (dirty) {
      this.state[slot]! |= DIRTY;
      this.dirtyCount++;
      this.dirtyPerSet[set]!++;
    } else {
      this.state[slot]! &= ~DIRTY;
      this.dirtyCount--;
      this.dirtyPerSet[set]!--;
    }
  }

  deferFree(slot: number): void {
    this.state[slot]! |= FREE_AFTER_COMMIT;
    this.freeAfterCommitList.push(slot);
  }

  /** After a commit: slots emptied while a dirty record was on disk, now recorded otherwise. */
  releaseDeferred(): void {
    const keep: number[] = [];
    for (const slot of this.freeAfterCommitList) {
      if (this.has(slot, DIRTY_ON_DISK)) keep.push(slot);
      else {
        this.state[slot]! &= ~FREE_AFTER_COMMIT;
        this.pushFree(slot);
      }
    }
    this.freeAfterCommitList.length = 0;
    this.freeAfterCommitList.push(...keep);
  }
}
