// origin block -> cache block lookup: an open-addressing hash table in typed
// arrays (linear probing, backward-shift deletion), sized once for the cache.
// Keys live in the owner's per-cache-block origin array, so the table itself
// holds only cache block numbers: 4 bytes per slot at load factor <= 0.5.
import { assert } from '../stdx/assert.js';

const EMPTY = 0xffffffff;
const MIX_32 = 0x9e3779b1;

export class BlockIndex {
  private readonly table: Uint32Array;
  private readonly mask: number;
  private count = 0;

  /** `originOf(cacheBlock)` must return the origin block a stored cache block holds. */
  constructor(capacity: number, private readonly originOf: (cacheBlock: number) => number) {
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.table = new Uint32Array(size).fill(EMPTY);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count;
  }

  get memoryBytes(): number {
    return this.table.byteLength;
  }

  private home(originBlock: number): number {
    const low = originBlock >>> 0;
    const high = Math.floor(originBlock / 2 ** 32) >>> 0;
    return (Math.imul(low ^ Math.imul(high, 0x85ebca6b), MIX_32) >>> 0) & this.mask;
  }

  /** The cache block holding originBlock, or -1. */
  get(originBlock: number): number {
    let position = this.home(originBlock);
    for (;;) {
      const cacheBlock = this.table[position]!;
      if (cacheBlock === EMPTY) return -1;
      if (this.originOf(cacheBlock) === originBlock) return cacheBlock;
      position = (position + 1) & this.mask;
    }
  }

  /** Records that cacheBlock holds originBlock (which must not be present yet). */
  insert(originBlock: number, cacheBlock: number): void {
    assert(this.count < this.mask, 'block index full');
    let position = this.home(originBlock);
    for (;;) {
      const current = this.table[position]!;
      if (current === EMPTY) break;
      assert(this.originOf(current) !== originBlock, 'origin block indexed twice');
      position = (position + 1) & this.mask;
    }
    this.table[position] = cacheBlock;
    this.count++;
  }

  /** Removes originBlock's entry (which must be present). */
  delete(originBlock: number): void {
    let position = this.home(originBlock);
    for (;;) {
      const current = this.table[position]!;
      assert(current !== EMPTY, 'deleting an origin block that is not indexed');
      if (this.originOf(current) === originBlock) break;
      position = (position + 1) & this.mask;
    }
    // Backward-shift deletion keeps every probe chain unbroken without tombstones.
    let hole = position;
    let next = (hole + 1) & this.mask;
    for (;;) {
      const cacheBlock = this.table[next]!;
      if (cacheBlock === EMPTY) break;
      const home = this.home(this.originOf(cacheBlock));
      const distanceFromHome = (next - home) & this.mask;
      const distanceToHole = (next - hole) & this.mask;
      if (distanceFromHome >= distanceToHole) {
        this.table[hole] = cacheBlock;
        hole = next;
      }
      next = (next + 1) & this.mask;
    }
    this.table[hole] = EMPTY;
    this.count--;
  }
}
