// LRU: evict the least recently used block of the set.
//
// One list per set, head = least recent. A hit moves the block to the tail.
// State: BlockLists (9 bytes per block). Pure decisions, no I/O.
import { BlockLists } from './block-lists.js';
import { NO_BLOCK, PolicyGeometry, ReplacementPolicy } from './policy.js';

const NIL = 0xffffffff;
const QUEUE = 0;

export class LruPolicy implements ReplacementPolicy {
  readonly name = 'lru';
  private readonly lists: BlockLists;

  constructor(geometry: PolicyGeometry) {
    this.lists = new BlockLists(geometry.cacheBlocks, geometry.assoc, 1);
  }

  get memoryBytes(): number {
    return this.lists.memoryBytes;
  }

  hit(cacheBlock: number): void {
    this.lists.moveToTail(cacheBlock, QUEUE);
  }

  admit(): boolean {
    return true;
  }

  victim(set: number, _originBlock: number, evictable: (cacheBlock: number) => boolean): number {
    const block = this.lists.firstFromHead(set, QUEUE, evictable);
    return block === NIL ? NO_BLOCK : block;
  }

  insert(cacheBlock: number): void {
    this.lists.pushTail(cacheBlock, QUEUE);
  }

  remove(cacheBlock: number): void {
    this.lists.unlink(cacheBlock);
  }
}
