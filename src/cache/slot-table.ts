// The engine's in-memory view of every cache block ("slot"): which origin
// block it holds, its state bits, and the free slots per set. Typed arrays
// sized once at open; no allocation per request. Per cache block: 4 bytes of
// origin block (8 for origins of 2^32 blocks or more), 1 byte of state and one
// bit of free map; the pending list grows with use (see docs/ARCHITECTURE.md,
// "Memory per cache block").
//
// Data checksums (CRC-32C of a clean block) live in memory only from when the
// data is written until a commit has made the record carrying them durable
// (`setCrc` ... `forgetCrc`): a map holds the few thousand in flight instead
// of 4 bytes for every block. Recovery reads them from the records.
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
//   HAS_CRC         crcOf(slot) is the checksum of the slot's current data, not
//                   yet durable (a record staged now carries it)
//   FREE            in its set's free map
//
// A slot emptied while DIRTY_ON_DISK waits in the deferred list (no bit: it is
// the only empty slot that is neither FREE nor RESERVED) until a commit clears it.
//
// Free slots are a bitmap; a set hands out its lowest free slot.
//
//        allocate              data written
//   FREE ---------> RESERVED ---------------> VALID (clean | DIRTY)
//     ^                 |  failure                 |  evict / invalidate
//     +-----------------+--------------------------+--> FREE, or deferred
//                                                        while DIRTY_ON_DISK
import { assert } from '../stdx/assert.js';

function assertNever(message: string): never {
  assert(false, message);
}
import { SetMapping } from './set-mapping.js';

export const VALID = 1;
export const DIRTY = 2;
export const RESERVED = 4;
export const PERSISTED_DIRTY = 8;
export const PENDING = 16;
export const HAS_CRC = 32;
/** In its set's free list (guards against freeing a slot twice). */
export const FREE = 64;
export const DIRTY_ON_DISK = 128;
/** The pending list starts this long and doubles as needed (it is bounded by PENDING_RECORDS_MAX and the cache). */
const PENDING_CAPACITY_INITIAL = 1024;

export class SlotTable {
  /** Uint32 when every origin block number fits (origins under 16 TiB at 4 KiB blocks), else Float64. */
  readonly originOf: Float64Array | Uint32Array;
  readonly state: Uint8Array;
  /** One bit per slot, set while the slot is FREE: bit (slot % 32) of word floor(slot / 32). */
  private readonly freeBits: Int32Array;
  /** Per set: free slots, and the lowest word of freeBits that may hold one of them. */
  private readonly freeCount: Uint32Array;
  private readonly freeHint: Uint32Array;
  /** Data checksums not yet durable in a record: slot -> CRC-32C, exactly the slots with HAS_CRC. */
  private readonly crcs = new Map<number, number>();
  readonly dirtyPerSet: Uint32Array;
  private pendingList: Uint32Array;
  private pendingCount = 0;
  private readonly freeAfterCommitList: number[] = [];
  validCount = 0;
  dirtyCount = 0;

  constructor(readonly mapping: SetMapping, originBlocks: number) {
    const blocks = mapping.cacheBlocks;
    assert(blocks < 2 ** 32, 'cache block numbers fit 32 bits');
    this.originOf = originBlocks <= 2 ** 32 ? new Uint32Array(blocks) : new Float64Array(blocks);
    this.state = new Uint8Array(blocks);
    this.freeBits = new Int32Array(Math.ceil(blocks / 32));
    this.freeCount = new Uint32Array(mapping.sets);
    this.freeHint = new Uint32Array(mapping.sets);
    for (let set = 0; set < mapping.sets; set++) this.freeHint[set] = Math.floor(mapping.firstBlockOf(set) / 32);
    this.dirtyPerSet = new Uint32Array(mapping.sets);
    this.pendingList = new Uint32Array(Math.min(blocks, PENDING_CAPACITY_INITIAL));
  }

  /** Bytes of the typed arrays (the CRC map holds only checksums waiting for a commit). */
  get memoryBytes(): number {
    return this.originOf.byteLength + this.state.byteLength + this.freeBits.byteLength + this.freeCount.byteLength
      + this.freeHint.byteLength + this.dirtyPerSet.byteLength + this.pendingList.byteLength;
  }

  has(slot: number, bits: number): boolean {
    return (this.state[slot]! & bits) !== 0;
  }

  /** Records the checksum of a slot's new data until a commit has made it durable (the caller sets HAS_CRC). */
  setCrc(slot: number, crc: number): void {
    this.crcs.set(slot, crc >>> 0);
  }

  /** The checksum of a slot with HAS_CRC. */
  crcOf(slot: number): number {
    const crc = this.crcs.get(slot);
    // The message is built only on failure: this runs for every record a commit stages.
    if (crc === undefined || !this.has(slot, HAS_CRC)) assert(false, `slot ${slot} has no checksum in memory`);
    return crc;
  }

  /**
   * After a commit made the slot's staged record durable (and nothing changed it since: not
   * PENDING): its checksum is on disk and leaves memory. A record staged again later says
   * clean without a checksum, which recovery treats as unproven (never as proven).
   */
  forgetCrc(slot: number): void {
    if (this.has(slot, PENDING)) return;
    this.crcs.delete(slot);
    this.state[slot]! &= ~HAS_CRC;
  }

  /** Checksums waiting for a commit (each costs a map entry until then). */
  get crcsInMemory(): number {
    return this.crcs.size;
  }

  /** Adds a slot to its set's free list (state must be empty of data bits). */
  pushFree(slot: number): void {
    // The message is built only on failure: this runs for every freed slot.
    if ((this.state[slot]! & (VALID | RESERVED | DIRTY_ON_DISK | DIRTY | FREE | HAS_CRC)) !== 0) assert(false, `freeing busy or free slot ${slot}`);
    const set = this.mapping.setOfCacheBlock(slot);
    assert(this.freeCount[set]! < this.mapping.assoc);
    this.state[slot]! |= FREE;
    this.crcs.delete(slot); // left by an eviction or an abandoned fill
    const word = slot >>> 5;
    this.freeBits[word]! |= 1 << (slot & 31);
    this.freeCount[set]!++;
    if (word < this.freeHint[set]!) this.freeHint[set] = word;
  }

  /**
   * At open: every slot that is not VALID (and holds nothing else) becomes free. Free slots
   * are taken lowest first: a sequential burst lands in consecutive slots, which writeback
   * then reads with single large reads.
   */
  buildFreeLists(): void {
    const { sets, assoc } = this.mapping;
    for (let set = 0; set < sets; set++) {
      assert(this.freeCount[set] === 0, 'free lists are built once, at open');
      const first = set * assoc;
      let count = 0;
      for (let slot = first; slot < first + assoc; slot++) {
        const state = this.state[slot]!;
        if ((state & VALID) !== 0) continue;
        if (state !== 0) assert(false, `slot ${slot} is neither valid nor empty at open`);
        this.state[slot] = FREE;
        this.freeBits[slot >>> 5]! |= 1 << (slot & 31);
        count++;
      }
      this.freeCount[set] = count;
    }
  }

  /** Takes the lowest free slot of `set`, or -1. */
  popFree(set: number): number {
    if (this.freeCount[set] === 0) return -1;
    const first = this.mapping.firstBlockOf(set);
    const end = first + this.mapping.assoc;
    for (let word = this.freeHint[set]!; word * 32 < end; word++) {
      let bits = this.freeBits[word]!;
      // Only this set's bits of the word (sets smaller than 32 slots share words).
      const low = Math.max(first - word * 32, 0);
      const high = Math.min(end - word * 32, 32);
      if (low > 0) bits &= ~((1 << low) - 1);
      if (high < 32) bits &= (1 << high) - 1;
      if (bits === 0) continue;
      const slot = word * 32 + (31 - Math.clz32(bits & -bits));
      assert(this.has(slot, FREE), 'free list holds a slot not marked free');
      this.freeBits[word]! &= ~(1 << (slot & 31));
      this.freeHint[set] = word;
      this.freeCount[set]!--;
      this.state[slot]! &= ~FREE;
      return slot;
    }
    return assertNever('a set with free slots has no free bit');
  }

  freeSlots(set: number): number {
    return this.freeCount[set]!;
  }

  markPending(slot: number): void {
    if ((this.state[slot]! & PENDING) !== 0) return;
    this.state[slot]! |= PENDING;
    if (this.pendingCount === this.pendingList.length) this.growPending();
    this.pendingList[this.pendingCount++] = slot;
  }

  /** A slot is listed at most once (PENDING), so the list never outgrows the cache. */
  private growPending(): void {
    assert(this.pendingList.length < this.mapping.cacheBlocks, 'more pending records than slots');
    const grown = new Uint32Array(Math.min(this.mapping.cacheBlocks, this.pendingList.length * 2));
    grown.set(this.pendingList);
    this.pendingList = grown;
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
      this.crcs.delete(slot); // a checksum not yet committed describes data just overwritten
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
    if ((this.state[slot]! & (VALID | RESERVED | FREE)) !== 0) assert(false, `deferring the free of a busy or free slot ${slot}`);
    this.freeAfterCommitList.push(slot);
  }

  /** After a commit: slots emptied while a dirty record was on disk, now recorded otherwise. */
  releaseDeferred(): void {
    const keep: number[] = [];
    for (const slot of this.freeAfterCommitList) {
      if (this.has(slot, DIRTY_ON_DISK)) keep.push(slot);
      else this.pushFree(slot);
    }
    this.freeAfterCommitList.length = 0;
    this.freeAfterCommitList.push(...keep);
  }
}
