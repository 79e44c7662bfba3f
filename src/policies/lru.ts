// LRU: evict the least recently used block of the set.
//
// FIFO's one list per set (head = least recent), except that a hit moves the
// block to the tail. State: BlockLists (9 bytes per block). Pure decisions, no I/O.
import { FifoPolicy } from './fifo.js';

const QUEUE = 0;

export class LruPolicy extends FifoPolicy {
  override readonly name: string = 'lru';

  override hit(cacheBlock: number): void {
    this.lists.moveToTail(cacheBlock, QUEUE);
  }
}
