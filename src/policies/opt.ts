// OPT (Belady's MIN with demand fill): evict the resident block whose next use
// lies farthest ahead. Offline: only the simulator can drive it, by calling
// setNextUse(t) before every access with the position of the next access to the
// same block (NEVER_AGAIN when there is none). Never offered to the engine.
//
// State: per set an indexed binary max-heap of resident blocks keyed by next
// use (Uint32 heap + position per block, Float64 key per block). No allocation.
import { assert } from '../stdx/assert.js';
import { NO_BLOCK, PolicyGeometry, ReplacementPolicy } from './policy.js';

/** Next-use key of a block that is never accessed again: farther than any position. */
export const NEVER_AGAIN = Number.MAX_SAFE_INTEGER;
const NOT_IN_HEAP = 0xffffffff;

export class OptPolicy implements ReplacementPolicy {
  readonly name = 'opt';
  private readonly assoc: number;
  private readonly heap: Uint32Array;
  private readonly positions: Uint32Array;
  private readonly nextUses: Float64Array;
  private readonly sizes: Uint32Array;
  private pendingNextUse = NEVER_AGAIN;

  constructor(geometry: PolicyGeometry) {
    this.assoc = geometry.assoc;
    this.heap = new Uint32Array(geometry.cacheBlocks);
    this.positions = new Uint32Array(geometry.cacheBlocks).fill(NOT_IN_HEAP);
    this.nextUses = new Float64Array(geometry.cacheBlocks);
    this.sizes = new Uint32Array(geometry.cacheBlocks / geometry.assoc);
  }

  get memoryBytes(): number {
    return this.heap.byteLength + this.positions.byteLength + this.nextUses.byteLength + this.sizes.byteLength;
  }

  /** The simulator's oracle: the position of the next access to the block about to be accessed. */
  setNextUse(nextUse: number): void {
    this.pendingNextUse = nextUse;
  }

  hit(cacheBlock: number): void {
    assert(this.positions[cacheBlock] !== NOT_IN_HEAP, 'opt: hit on a block that is not resident');
    this.nextUses[cacheBlock] = this.pendingNextUse;
    const set = Math.floor(cacheBlock / this.assoc);
    const position = this.siftUp(set, this.positions[cacheBlock]!);
    this.siftDown(set, position);
  }

  admit(): boolean {
    return true;
  }

  victim(set: number, _originBlock: number, evictable: (cacheBlock: number) => boolean): number {
    const base = set * this.assoc;
    const size = this.sizes[set]!;
    if (size === 0) return NO_BLOCK;
    const root = this.heap[base]!;
    if (evictable(root)) return root;
    let best = NO_BLOCK;
    for (let position = 1; position < size; position++) {
      const block = this.heap[base + position]!;
      if (evictable(block) && (best === NO_BLOCK || this.nextUses[block]! > this.nextUses[best]!)) best = block;
    }
    return best;
  }

  insert(cacheBlock: number): void {
    const set = Math.floor(cacheBlock / this.assoc);
    assert(this.sizes[set]! < this.assoc, 'opt: set over capacity');
    this.nextUses[cacheBlock] = this.pendingNextUse;
    const position = this.sizes[set]!++;
    this.place(set, position, cacheBlock);
    this.siftUp(set, position);
  }

  remove(cacheBlock: number): void {
    const set = Math.floor(cacheBlock / this.assoc);
    const position = this.positions[cacheBlock]!;
    assert(position !== NOT_IN_HEAP, 'opt: removing a block that is not resident');
    this.positions[cacheBlock] = NOT_IN_HEAP;
    const last = --this.sizes[set]!;
    if (position === last) return;
    this.place(set, position, this.heap[set * this.assoc + last]!);
    this.siftDown(set, this.siftUp(set, position));
  }

  private place(set: number, position: number, cacheBlock: number): void {
    this.heap[set * this.assoc + position] = cacheBlock;
    this.positions[cacheBlock] = position;
  }

  private keyAt(set: number, position: number): number {
    return this.nextUses[this.heap[set * this.assoc + position]!]!;
  }

  private swap(set: number, a: number, b: number): void {
    const blockA = this.heap[set * this.assoc + a]!;
    this.place(set, a, this.heap[set * this.assoc + b]!);
    this.place(set, b, blockA);
  }

  private siftUp(set: number, position: number): number {
    while (position > 0) {
      const parent = (position - 1) >> 1;
      if (this.keyAt(set, parent) >= this.keyAt(set, position)) break;
      this.swap(set, parent, position);
      position = parent;
    }
    return position;
  }

  private siftDown(set: number, position: number): void {
    const size = this.sizes[set]!;
    for (;;) {
      const left = 2 * position + 1;
      if (left >= size) return;
      const right = left + 1;
      const larger = right < size && this.keyAt(set, right) > this.keyAt(set, left) ? right : left;
      if (this.keyAt(set, position) >= this.keyAt(set, larger)) return;
      this.swap(set, position, larger);
      position = larger;
    }
  }
}
