// Ghost lists: ordered lists of origin-block keys that are no longer resident
// (ARC's B1/B2, 2Q's A1out, S3-FIFO's G), with O(1) lookup by key.
//
// Responsibility: remember recently evicted keys per set, in FIFO/LRU order,
// within a fixed budget of nodes. Nodes live in typed arrays sized once; keys
// are found through an open-addressing table (linear probing, backward-shift
// deletion) of node numbers. Invariants: a key is in at most one list; the
// caller keeps each set's ghosts within its share of `capacity` (asserted).
// No allocation after construction.
import { assert } from '../stdx/assert.js';

const NIL = 0xffffffff;
const MIX_HIGH = 0x85ebca6b;
const MIX_32 = 0x9e3779b1;

export class GhostLists {
  private readonly keys: Float64Array;
  private readonly previous: Uint32Array;
  private readonly next: Uint32Array;
  private readonly listOfNode: Uint32Array;
  private readonly heads: Uint32Array;
  private readonly tails: Uint32Array;
  private readonly sizes: Uint32Array;
  private readonly table: Uint32Array;
  private readonly mask: number;
  private freeHead = NIL;

  /** `capacity` nodes shared by `lists` lists. */
  constructor(capacity: number, lists: number) {
    const nodes = Math.max(1, capacity);
    this.keys = new Float64Array(nodes);
    this.previous = new Uint32Array(nodes);
    this.next = new Uint32Array(nodes);
    this.listOfNode = new Uint32Array(nodes).fill(NIL);
    this.heads = new Uint32Array(lists).fill(NIL);
    this.tails = new Uint32Array(lists).fill(NIL);
    this.sizes = new Uint32Array(lists);
    let tableSize = 16;
    while (tableSize < nodes * 2) tableSize *= 2;
    this.table = new Uint32Array(tableSize).fill(NIL);
    this.mask = tableSize - 1;
    for (let node = nodes - 1; node >= 0; node--) {
      this.next[node] = this.freeHead;
      this.freeHead = node;
    }
  }

  get memoryBytes(): number {
    return this.keys.byteLength + this.previous.byteLength * 3 + this.heads.byteLength * 3 + this.table.byteLength;
  }

  size(list: number): number {
    return this.sizes[list]!;
  }

  private home(key: number): number {
    const low = key >>> 0;
    const high = Math.floor(key / 2 ** 32) >>> 0;
    return (Math.imul(low ^ Math.imul(high, MIX_HIGH), MIX_32) >>> 0) & this.mask;
  }

  /** The list holding `key`, or -1. */
  listOf(key: number): number {
    const node = this.find(key);
    return node === NIL ? -1 : this.listOfNode[node]!;
  }

  private find(key: number): number {
    for (let position = this.home(key); ; position = (position + 1) & this.mask) {
      const node = this.table[position]!;
      if (node === NIL || this.keys[node] === key) return node;
    }
  }

  /** Appends `key` (not present in any list) at the newest end of `list`. */
  pushNewest(list: number, key: number): void {
    assert(this.freeHead !== NIL, 'ghost lists over capacity');
    const node = this.freeHead;
    this.freeHead = this.next[node]!;
    this.keys[node] = key;
    let position = this.home(key);
    while (this.table[position] !== NIL) {
      assert(this.keys[this.table[position]!] !== key, 'ghost key listed twice');
      position = (position + 1) & this.mask;
    }
    this.table[position] = node;
    const tail = this.tails[list]!;
    this.previous[node] = tail;
    this.next[node] = NIL;
    if (tail === NIL) this.heads[list] = node;
    else this.next[tail] = node;
    this.tails[list] = node;
    this.sizes[list]!++;
    this.listOfNode[node] = list;
  }

  /** Removes `key` if present; returns the list it was in, or -1. */
  remove(key: number): number {
    const node = this.find(key);
    if (node === NIL) return -1;
    const list = this.listOfNode[node]!;
    this.removeNode(node);
    return list;
  }

  /** Drops the oldest key of `list` (which must not be empty). */
  dropOldest(list: number): void {
    const node = this.heads[list]!;
    assert(node !== NIL, 'dropping from an empty ghost list');
    this.removeNode(node);
  }

  private removeNode(node: number): void {
    const list = this.listOfNode[node]!;
    const before = this.previous[node]!;
    const after = this.next[node]!;
    if (before === NIL) this.heads[list] = after;
    else this.next[before] = after;
    if (after === NIL) this.tails[list] = before;
    else this.previous[after] = before;
    this.sizes[list]!--;
    this.listOfNode[node] = NIL;
    this.unindex(node);
    this.next[node] = this.freeHead;
    this.freeHead = node;
  }

  private unindex(node: number): void {
    let hole = this.home(this.keys[node]!);
    while (this.table[hole] !== node) hole = (hole + 1) & this.mask;
    // Backward-shift deletion keeps probe chains unbroken without tombstones.
    for (let position = (hole + 1) & this.mask; ; position = (position + 1) & this.mask) {
      const moved = this.table[position]!;
      if (moved === NIL) break;
      const home = this.home(this.keys[moved]!);
      if (((position - home) & this.mask) >= ((position - hole) & this.mask)) {
        this.table[hole] = moved;
        hole = position;
      }
    }
    this.table[hole] = NIL;
  }
}
