// Intrusive doubly linked lists over resident cache blocks, in typed arrays.
//
// Responsibility: the ordered queues (LRU, FIFO, T1/T2, A1in/Am, S/M) that the
// classic policies keep per set. A policy owns `listsPerSet` lists for every
// set; list `set * listsPerSet + k` is queue k of that set.
// Invariants: a block is in at most one list (listOf = NO_LIST otherwise);
// head is the oldest / least recent end, tail the newest. Sized once at
// construction: 9 bytes per cache block plus 12 bytes per list. No allocation.
import { assert } from '../stdx/assert.js';

export const NO_LIST = 0xff;
const NIL = 0xffffffff;

export class BlockLists {
  readonly previous: Uint32Array;
  readonly next: Uint32Array;
  /** The list (0 .. listsPerSet-1, within the block's set) each block is in, or NO_LIST. */
  readonly listOf: Uint8Array;
  private readonly heads: Uint32Array;
  private readonly tails: Uint32Array;
  private readonly sizes: Uint32Array;

  constructor(cacheBlocks: number, readonly assoc: number, readonly listsPerSet: number) {
    assert(listsPerSet > 0 && listsPerSet < NO_LIST, 'listsPerSet out of range');
    const lists = (cacheBlocks / assoc) * listsPerSet;
    this.previous = new Uint32Array(cacheBlocks).fill(NIL);
    this.next = new Uint32Array(cacheBlocks).fill(NIL);
    this.listOf = new Uint8Array(cacheBlocks).fill(NO_LIST);
    this.heads = new Uint32Array(lists).fill(NIL);
    this.tails = new Uint32Array(lists).fill(NIL);
    this.sizes = new Uint32Array(lists);
  }

  get memoryBytes(): number {
    return this.previous.byteLength + this.next.byteLength + this.listOf.byteLength + this.heads.byteLength * 3;
  }

  private id(set: number, list: number): number {
    return set * this.listsPerSet + list;
  }

  size(set: number, list: number): number {
    return this.sizes[this.id(set, list)]!;
  }

  /** Oldest block of the list, or NIL (0xffffffff). */
  head(set: number, list: number): number {
    return this.heads[this.id(set, list)]!;
  }

  /** The block after `cacheBlock` towards the tail, or NIL. */
  after(cacheBlock: number): number {
    return this.next[cacheBlock]!;
  }

  contains(cacheBlock: number): boolean {
    return this.listOf[cacheBlock] !== NO_LIST;
  }

  pushTail(cacheBlock: number, list: number): void {
    assert(this.listOf[cacheBlock] === NO_LIST, 'block already listed');
    const id = this.id(Math.floor(cacheBlock / this.assoc), list);
    const tail = this.tails[id]!;
    this.previous[cacheBlock] = tail;
    this.next[cacheBlock] = NIL;
    if (tail === NIL) this.heads[id] = cacheBlock;
    else this.next[tail] = cacheBlock;
    this.tails[id] = cacheBlock;
    this.sizes[id]!++;
    this.listOf[cacheBlock] = list;
  }

  unlink(cacheBlock: number): void {
    const list = this.listOf[cacheBlock]!;
    assert(list !== NO_LIST, 'unlinking a block that is not listed');
    const id = this.id(Math.floor(cacheBlock / this.assoc), list);
    const before = this.previous[cacheBlock]!;
    const after = this.next[cacheBlock]!;
    if (before === NIL) this.heads[id] = after;
    else this.next[before] = after;
    if (after === NIL) this.tails[id] = before;
    else this.previous[after] = before;
    this.sizes[id]!--;
    this.listOf[cacheBlock] = NO_LIST;
  }

  /** Moves a listed block to the tail of `list` (which may be its own list). */
  moveToTail(cacheBlock: number, list: number): void {
    this.unlink(cacheBlock);
    this.pushTail(cacheBlock, list);
  }

  /** First block from the head of the list that `accept` takes, or NIL. */
  firstFromHead(set: number, list: number, accept: (cacheBlock: number) => boolean): number {
    for (let block = this.head(set, list); block !== NIL; block = this.next[block]!) {
      if (accept(block)) return block;
    }
    return NIL;
  }
}
