// FIFO: evict the block of the set that was inserted first.
//
// One list per set, head = oldest insertion. Hits change nothing.
// State: BlockLists (9 bytes per block). Pure decisions, no I/O.
import { BlockLists } from './block-lists.js';
import { NO_BLOCK, PolicyGeometry, ReplacementPolicy } from './policy.js';

const NIL = 0xffffffff;
const QUEUE = 0;

export class FifoPolicy implements ReplacementPolicy {
  readonly name: string = 'fifo';
  protected readonly lists: BlockLists;

  constructor(geometry: PolicyGeometry) {
    this.lists = new BlockLists(geometry.cacheBlocks, geometry.assoc, 1);
  }

  get memoryBytes(): number {
    return this.lists.memoryBytes;
  }

  hit(_cacheBlock: number): void {
    // FIFO ignores hits by definition.
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
