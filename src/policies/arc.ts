// ARC (Megiddo and Modha, FAST '03, Figure 4), per set of c = assoc blocks.
//
// T1: resident blocks seen once recently; T2: seen at least twice. B1/B2:
// ghost keys evicted from T1/T2. p (a real number, per set) is T1's target
// size, raised by hits in B1 and lowered by hits in B2. Invariants (per set):
// |T1|+|T2| <= c, |T1|+|B1| <= c, |T1|+|T2|+|B1|+|B2| <= 2c.
// Mapping to the engine calls: admit() classifies the miss and adapts p (and
// trims ghosts as Figure 4 does before REPLACE); victim() runs REPLACE (or picks
// T1's LRU to drop outright in case IV(a)); remove() moves the evicted block's
// key into B1 or B2; insert() puts the new block in T1 or, after a ghost hit, T2.
// State: BlockLists + origin per block (17 B/block) + ghosts. Pure, no I/O.
import { BlockLists } from './block-lists.js';
import { GhostLists } from './ghost-lists.js';
import { NO_BLOCK, PolicyGeometry, ReplacementPolicy } from './policy.js';

const NIL = 0xffffffff;
const T1 = 0;
const T2 = 1;
const MISS_NEW = 0;
const MISS_IN_B1 = 1;
const MISS_IN_B2 = 2;

export class ArcPolicy implements ReplacementPolicy {
  readonly name = 'arc';
  private readonly lists: BlockLists;
  private readonly ghosts: GhostLists;
  private readonly origins: Float64Array;
  private readonly targets: Float64Array;
  private readonly c: number;
  private pendingMiss = MISS_NEW;
  private pendingDropT1 = false;
  private victimWithoutGhost = false;

  constructor(geometry: PolicyGeometry) {
    const sets = geometry.cacheBlocks / geometry.assoc;
    this.c = geometry.assoc;
    this.lists = new BlockLists(geometry.cacheBlocks, geometry.assoc, 2);
    this.ghosts = new GhostLists(geometry.cacheBlocks, sets * 2);
    this.origins = new Float64Array(geometry.cacheBlocks);
    this.targets = new Float64Array(sets);
  }

  get memoryBytes(): number {
    return this.lists.memoryBytes + this.ghosts.memoryBytes + this.origins.byteLength + this.targets.byteLength;
  }

  hit(cacheBlock: number): void {
    this.lists.moveToTail(cacheBlock, T2);
  }

  admit(set: number, originBlock: number): boolean {
    const b1 = set * 2;
    const b2 = b1 + 1;
    const ghost = this.ghosts.listOf(originBlock);
    this.pendingDropT1 = false;
    if (ghost === b1) {
      const delta = Math.max(this.ghosts.size(b2) / this.ghosts.size(b1), 1);
      this.targets[set] = Math.min(this.targets[set]! + delta, this.c);
      this.ghosts.remove(originBlock);
      this.pendingMiss = MISS_IN_B1;
    } else if (ghost === b2) {
      const delta = Math.max(this.ghosts.size(b1) / this.ghosts.size(b2), 1);
      this.targets[set] = Math.max(this.targets[set]! - delta, 0);
      this.ghosts.remove(originBlock);
      this.pendingMiss = MISS_IN_B2;
    } else {
      this.pendingMiss = MISS_NEW;
      const t1 = this.lists.size(set, T1);
      const total = t1 + this.lists.size(set, T2) + this.ghosts.size(b1) + this.ghosts.size(b2);
      if (t1 + this.ghosts.size(b1) >= this.c) {
        if (t1 < this.c) this.ghosts.dropOldest(b1);
        else this.pendingDropT1 = true;
      } else if (total >= 2 * this.c) {
        this.ghosts.dropOldest(b2);
      }
    }
    return true;
  }

  victim(set: number, _originBlock: number, evictable: (cacheBlock: number) => boolean): number {
    const t1 = this.lists.size(set, T1);
    let first = T2;
    if (this.pendingDropT1) first = T1;
    else if (t1 > 0 && (t1 > this.targets[set]! || (this.pendingMiss === MISS_IN_B2 && t1 === this.targets[set]))) first = T1;
    else if (this.lists.size(set, T2) === 0) first = T1;
    let block = this.lists.firstFromHead(set, first, evictable);
    if (block === NIL) block = this.lists.firstFromHead(set, first === T1 ? T2 : T1, evictable);
    this.victimWithoutGhost = this.pendingDropT1;
    return block === NIL ? NO_BLOCK : block;
  }

  insert(cacheBlock: number, originBlock: number): void {
    this.origins[cacheBlock] = originBlock;
    this.lists.pushTail(cacheBlock, this.pendingMiss === MISS_NEW ? T1 : T2);
    this.pendingMiss = MISS_NEW;
    this.pendingDropT1 = false;
  }

  remove(cacheBlock: number, evicted: boolean): void {
    const list = this.lists.listOf[cacheBlock]!;
    const set = Math.floor(cacheBlock / this.c);
    this.lists.unlink(cacheBlock);
    const withGhost = evicted && !this.victimWithoutGhost;
    this.victimWithoutGhost = false;
    if (!withGhost) return;
    const b1 = set * 2;
    const b2 = b1 + 1;
    // Keep the set within its c ghost nodes even after invalidations upset Figure 4's invariants.
    if (this.ghosts.size(b1) + this.ghosts.size(b2) >= this.c) this.ghosts.dropOldest(this.ghosts.size(b2) > 0 ? b2 : b1);
    this.ghosts.pushNewest(b1 + list, this.origins[cacheBlock]!);
  }
}
