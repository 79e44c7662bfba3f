// S3-FIFO (Yang et al., SOSP '23), per set of c = assoc blocks.
//
// S: small FIFO of new blocks, target floor(c/10). M: main FIFO of the rest.
// G: ghost FIFO of keys evicted from S, at most floor(9c/10). A per-block
// counter counts hits. Evicting from M reinserts blocks with counter >= 1 at
// M's tail with counter min(counter, 3) - 1; evicting from S moves blocks with
// counter >= 2 to M and evicts the first other one into G. A miss found in G
// enters M, any other miss enters S; when S's target is 0 or 1 new blocks are
// not admitted at all (as libCacheSim does) — but sets of 4..19 blocks get a
// 2-block S rather than admitting nothing (per-set operation needs it).
// State: BlockLists + origin + counter per block (18 B/block) + ghosts. Pure, no I/O.
import { BlockLists } from './block-lists.js';
import { GhostLists } from './ghost-lists.js';
import { NO_BLOCK, PolicyGeometry, ReplacementPolicy } from './policy.js';

const NIL = 0xffffffff;
const SMALL = 0;
const MAIN = 1;
/** S holds 10% of the set and G remembers 90%: the paper's defaults. */
const SMALL_PERCENT = 10;
const GHOST_PERCENT = 90;
/** Reinsertion keeps at most this many hits' credit (the paper's 2-bit counter). */
const COUNTER_CREDIT_MAX = 3;
const COUNTER_SATURATED = 255;
/** Smallest useful S (see the constructor). */
const SMALL_BLOCKS_MIN = 2;
/** Hits needed in S to be promoted to M. */
const PROMOTE_HITS = 2;

export class S3FifoPolicy implements ReplacementPolicy {
  readonly name = 's3fifo';
  private readonly lists: BlockLists;
  private readonly ghosts: GhostLists;
  private readonly origins: Float64Array;
  private readonly counters: Uint8Array;
  private readonly smallTarget: number;
  private readonly mainShare: number;
  private readonly ghostCapacity: number;
  private readonly stepsMax: number;
  private pendingGhostHit = false;

  constructor(geometry: PolicyGeometry) {
    const c = geometry.assoc;
    const sets = geometry.cacheBlocks / c;
    // libCacheSim admits nothing when S would hold 0 or 1 block, which would leave sets of fewer
    // than 20 blocks empty forever; we give such sets a 2-block S instead (no reference size is affected).
    this.smallTarget = Math.floor((c * SMALL_PERCENT) / 100);
    if (this.smallTarget < SMALL_BLOCKS_MIN && c >= 2 * SMALL_BLOCKS_MIN) this.smallTarget = SMALL_BLOCKS_MIN;
    this.mainShare = c - this.smallTarget;
    this.ghostCapacity = Math.floor((c * GHOST_PERCENT) / 100);
    // Each block is visited at most COUNTER_CREDIT_MAX + 1 times before it is evictable or rotated.
    this.stepsMax = (COUNTER_CREDIT_MAX + 2) * c + 1;
    this.lists = new BlockLists(geometry.cacheBlocks, c, 2);
    this.ghosts = new GhostLists(sets * this.ghostCapacity, sets);
    this.origins = new Float64Array(geometry.cacheBlocks);
    this.counters = new Uint8Array(geometry.cacheBlocks);
  }

  get memoryBytes(): number {
    return this.lists.memoryBytes + this.ghosts.memoryBytes + this.origins.byteLength + this.counters.byteLength;
  }

  hit(cacheBlock: number): void {
    if (this.counters[cacheBlock]! < COUNTER_SATURATED) this.counters[cacheBlock]!++;
  }

  admit(_set: number, originBlock: number): boolean {
    this.pendingGhostHit = this.ghosts.remove(originBlock) >= 0;
    return this.pendingGhostHit || this.smallTarget > 1;
  }

  victim(set: number, _originBlock: number, evictable: (cacheBlock: number) => boolean): number {
    // The choice of queue is made once: S is drained until one block leaves it.
    let fromMain = this.lists.size(set, MAIN) > this.mainShare || this.lists.size(set, SMALL) === 0;
    let steps = 0;
    while (steps++ < this.stepsMax) {
      if (this.lists.size(set, SMALL) === 0) fromMain = true;
      const block = this.lists.head(set, fromMain ? MAIN : SMALL);
      if (block === NIL) return NO_BLOCK;
      const counter = this.counters[block]!;
      if (fromMain) {
        if (counter === 0 && evictable(block)) return block;
        this.counters[block] = Math.max(Math.min(counter, COUNTER_CREDIT_MAX) - 1, 0);
        this.lists.moveToTail(block, MAIN);
      } else if (counter >= PROMOTE_HITS) {
        this.counters[block] = 0;
        this.lists.moveToTail(block, MAIN);
      } else if (evictable(block)) {
        return block;
      } else {
        this.lists.moveToTail(block, SMALL);
      }
    }
    return NO_BLOCK;
  }

  insert(cacheBlock: number, originBlock: number): void {
    this.origins[cacheBlock] = originBlock;
    this.counters[cacheBlock] = 0;
    this.lists.pushTail(cacheBlock, this.pendingGhostHit ? MAIN : SMALL);
    this.pendingGhostHit = false;
  }

  remove(cacheBlock: number, evicted: boolean): void {
    const wasSmall = this.lists.listOf[cacheBlock] === SMALL;
    const set = Math.floor(cacheBlock / this.lists.assoc);
    this.lists.unlink(cacheBlock);
    if (!evicted || !wasSmall || this.ghostCapacity === 0) return;
    if (this.ghosts.size(set) >= this.ghostCapacity) this.ghosts.dropOldest(set);
    this.ghosts.pushNewest(set, this.origins[cacheBlock]!);
  }
}
