// origin block -> cache block lookup: open-addressing hash tables in typed
// arrays (linear probing, backward-shift deletion), sized once for the cache.
// Keys live in the owner's per-cache-block origin array, so a table holds only
// cache block numbers.
//
// Two shapes:
// - one table for everything (the RAM tier, the simulator): a power of two at
//   load factor <= 0.5, 4-byte entries: 8 bytes per cache block;
// - partitioned by set (the SSD tier, given its SetMapping): an origin block can
//   only live in its own set, so each set gets its own small table of
//   ceil(assoc / SET_INDEX_LOAD) entries holding the block's position within the
//   set: 2-byte entries while assoc < 65535, so 2.5 bytes per cache block at
//   assoc 512 (a full set is at load 0.8; its table is 1.25 KiB, so a probe
//   sequence stays within a cache line or two).
import { assert } from '../stdx/assert.js';
import { SET_INDEX_LOAD_PERCENT } from '../constants.js';
import { SetMapping } from './set-mapping.js';

const MIX_32 = 0x9e3779b1;
const MIX_HIGH_32 = 0x85ebca6b;
const EMPTY_16 = 0xffff;
const EMPTY_32 = 0xffffffff;

export class BlockIndex {
  private readonly table: Uint16Array | Uint32Array;
  /** The entry value of an empty position. */
  private readonly empty: number;
  /** Entries per set table. */
  private readonly setTableSize: number;
  /** Cache blocks per set (entries are positions within the set). */
  private readonly assoc: number;
  private readonly mapping: SetMapping | undefined;
  private count = 0;

  /**
   * `originOf(cacheBlock)` must return the origin block a stored cache block holds.
   * With `mapping`, the table is partitioned by set: `capacity` must equal its cacheBlocks,
   * and a cache block may only be indexed under an origin block of its own set.
   */
  constructor(capacity: number, private readonly originOf: (cacheBlock: number) => number, mapping?: SetMapping) {
    assert(Number.isSafeInteger(capacity) && capacity > 0);
    if (mapping === undefined) {
      let size = 16;
      while (size < capacity * 2) size *= 2;
      this.setTableSize = size;
      this.assoc = capacity;
    } else {
      assert(mapping.cacheBlocks === capacity, 'a partitioned index covers the whole cache');
      this.setTableSize = Math.ceil((mapping.assoc * 100) / SET_INDEX_LOAD_PERCENT);
      this.assoc = mapping.assoc;
    }
    assert(this.setTableSize > this.assoc, 'a set table always keeps an empty position');
    this.mapping = mapping;
    const sets = mapping?.sets ?? 1;
    // Entries are positions within a set (< assoc); the largest value marks an empty position.
    if (this.assoc < EMPTY_16) {
      this.table = new Uint16Array(sets * this.setTableSize).fill(EMPTY_16);
      this.empty = EMPTY_16;
    } else {
      this.table = new Uint32Array(sets * this.setTableSize).fill(EMPTY_32);
      this.empty = EMPTY_32;
    }
  }

  get size(): number {
    return this.count;
  }

  get memoryBytes(): number {
    return this.table.byteLength;
  }

  private setOf(originBlock: number): number {
    return this.mapping === undefined ? 0 : this.mapping.setOf(originBlock);
  }

  /** Position of originBlock's home within its set's table. */
  private home(originBlock: number): number {
    const low = originBlock >>> 0;
    const high = Math.floor(originBlock / 2 ** 32) >>> 0;
    const hash = Math.imul(low ^ Math.imul(high, MIX_HIGH_32), MIX_32) >>> 0;
    // Multiplicative range reduction (high bits of the hash): uniform for any table size.
    return Math.floor((hash * this.setTableSize) / 2 ** 32);
  }

  /** The cache block holding originBlock, or -1. */
  get(originBlock: number): number {
    const set = this.setOf(originBlock);
    const base = set * this.setTableSize;
    const firstBlock = set * this.assoc;
    const size = this.setTableSize;
    let position = this.home(originBlock);
    for (;;) {
      const entry = this.table[base + position]!;
      if (entry === this.empty) return -1;
      if (this.originOf(firstBlock + entry) === originBlock) return firstBlock + entry;
      position = position + 1 === size ? 0 : position + 1;
    }
  }

  /** Records that cacheBlock holds originBlock (which must not be present yet). */
  insert(originBlock: number, cacheBlock: number): void {
    const set = this.setOf(originBlock);
    const base = set * this.setTableSize;
    const firstBlock = set * this.assoc;
    const entry = cacheBlock - firstBlock;
    assert(entry >= 0 && entry < this.assoc, 'cache block indexed outside its origin block\'s set');
    const size = this.setTableSize;
    let position = this.home(originBlock);
    for (;;) {
      const current = this.table[base + position]!;
      if (current === this.empty) break;
      assert(this.originOf(firstBlock + current) !== originBlock, 'origin block indexed twice');
      position = position + 1 === size ? 0 : position + 1;
    }
    this.table[base + position] = entry;
    this.count++;
  }

  /** Removes originBlock's entry (which must be present). */
  delete(originBlock: number): void {
    const set = this.setOf(originBlock);
    const base = set * this.setTableSize;
    const firstBlock = set * this.assoc;
    const size = this.setTableSize;
    let position = this.home(originBlock);
    for (;;) {
      const current = this.table[base + position]!;
      assert(current !== this.empty, 'deleting an origin block that is not indexed');
      if (this.originOf(firstBlock + current) === originBlock) break;
      position = position + 1 === size ? 0 : position + 1;
    }
    // Backward-shift deletion keeps every probe chain unbroken without tombstones.
    let hole = position;
    let next = hole + 1 === size ? 0 : hole + 1;
    for (;;) {
      const entry = this.table[base + next]!;
      if (entry === this.empty) break;
      const home = this.home(this.originOf(firstBlock + entry));
      const distanceFromHome = (next - home + size) % size;
      const distanceToHole = (next - hole + size) % size;
      if (distanceFromHome >= distanceToHole) {
        this.table[base + hole] = entry;
        hole = next;
      }
      next = next + 1 === size ? 0 : next + 1;
    }
    this.table[base + hole] = this.empty;
    this.count--;
  }
}
