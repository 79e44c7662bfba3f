// 2Q (Johnson and Shasha, VLDB '94, full version), per set of c = assoc blocks.
//
// A1in: FIFO of first-time blocks, target kin = floor(c/4). Am: LRU of blocks
// seen again. A1out: ghost FIFO of keys evicted from A1in, at most
// kout = floor(c/2). A miss found in A1out enters Am; any other miss enters
// A1in. A hit in Am refreshes it; a hit in A1in changes nothing. Reclaiming:
// A1in's oldest (into A1out) if |A1in| > kin or Am is empty, else Am's LRU.
// The ghost lookup happens at admit(), before the reclaim (REFERENCE.md).
// State: BlockLists + origin per block (17 B/block) + ghosts. Pure, no I/O.
import { BlockLists } from './block-lists.js';
import { GhostLists } from './ghost-lists.js';
import { NO_BLOCK, PolicyGeometry, ReplacementPolicy } from './policy.js';

const NIL = 0xffffffff;
const A1IN = 0;
const AM = 1;
/** kin = c/4 and kout = c/2: the paper's recommended tuning. */
const KIN_DIVISOR = 4;
const KOUT_DIVISOR = 2;

export class TwoQPolicy implements ReplacementPolicy {
  readonly name = '2q';
  private readonly lists: BlockLists;
  private readonly ghosts: GhostLists;
  private readonly origins: Float64Array;
  private readonly kin: number;
  private readonly kout: number;
  private pendingGhostHit = false;

  constructor(geometry: PolicyGeometry) {
    const sets = geometry.cacheBlocks / geometry.assoc;
    this.kin = Math.floor(geometry.assoc / KIN_DIVISOR);
    this.kout = Math.floor(geometry.assoc / KOUT_DIVISOR);
    this.lists = new BlockLists(geometry.cacheBlocks, geometry.assoc, 2);
    this.ghosts = new GhostLists(sets * this.kout, sets);
    this.origins = new Float64Array(geometry.cacheBlocks);
  }

  get memoryBytes(): number {
    return this.lists.memoryBytes + this.ghosts.memoryBytes + this.origins.byteLength;
  }

  hit(cacheBlock: number): void {
    if (this.lists.listOf[cacheBlock] === AM) this.lists.moveToTail(cacheBlock, AM);
  }

  admit(_set: number, originBlock: number): boolean {
    this.pendingGhostHit = this.ghosts.remove(originBlock) >= 0;
    return true;
  }

  victim(set: number, _originBlock: number, evictable: (cacheBlock: number) => boolean): number {
    const fromA1in = this.lists.size(set, A1IN) > this.kin || this.lists.size(set, AM) === 0;
    const first = fromA1in ? A1IN : AM;
    let block = this.lists.firstFromHead(set, first, evictable);
    if (block === NIL) block = this.lists.firstFromHead(set, first === A1IN ? AM : A1IN, evictable);
    return block === NIL ? NO_BLOCK : block;
  }

  insert(cacheBlock: number, originBlock: number): void {
    this.origins[cacheBlock] = originBlock;
    this.lists.pushTail(cacheBlock, this.pendingGhostHit ? AM : A1IN);
    this.pendingGhostHit = false;
  }

  remove(cacheBlock: number, evicted: boolean): void {
    const wasA1in = this.lists.listOf[cacheBlock] === A1IN;
    const set = Math.floor(cacheBlock / this.lists.assoc);
    this.lists.unlink(cacheBlock);
    if (!evicted || !wasA1in || this.kout === 0) return;
    if (this.ghosts.size(set) >= this.kout) this.ghosts.dropOldest(set);
    this.ghosts.pushNewest(set, this.origins[cacheBlock]!);
  }
}
