// The RAM tier: whole cache blocks kept in the process's own memory above the
// SSD tier (the Linux buffer cache's page cache, seed 003). Pure bookkeeping:
// no I/O, no timers; the engine moves data in and out and decides when.
//
// Memory: one arena of `pages × blockBytes` allocated once (no allocation per
// block), a BlockIndex (origin block -> page), a replacement policy over the
// pages (the same ReplacementPolicy interface as the SSD tier, fully
// associative) and a FIFO of dirty pages, oldest first, in typed arrays.
//
// A page is FREE, CLEAN (VALID) or DIRTY (VALID | DIRTY). A valid page always
// holds its block's newest content: the engine changes a page only when it
// changes the block (writes) and drops it when the block's content changes
// elsewhere (trim, zeroing, failed writes). A dirty page is newer than both
// lower tiers and is never evicted; only clean pages are victims.
//
// Lending (zero-copy reads): a page may be lent to replies in flight, which
// send views of the arena. A lent page's bytes never change and it is never
// reused until every loan is returned: a write to its block moves the block
// to another page first (copy on write), and a dropped lent page waits, out of
// the index (ORPHAN), for its loans before it is free. At most
// RAM_PINNED_PERCENT of the pages are lent, so with at most RAM_DIRTY_PERCENT
// dirty a page that is free or clean and not lent always exists for the move.
// Concurrency: single-threaded; the engine calls it synchronously.
import { RAM_PINNED_PERCENT } from '../constants.js';
import { assert } from '../stdx/assert.js';
import { NO_BLOCK, ReplacementPolicy } from '../policies/policy.js';
import { createPolicy } from '../policies/registry.js';
import { BlockIndex } from './block-index.js';

const PAGE_VALID = 1;
const PAGE_DIRTY = 2;
/** Out of the index (dropped or moved) while lent: free once its loans are returned. */
const PAGE_ORPHAN = 4;
/** Loans of one page at once at most (its Uint16 counter). */
const PAGE_LOANS_MAX = 0xffff;
const NONE = -1;

/** The RAM tier's replacement policy: CLOCK costs one bit per hit on the hot path. */
export const RAM_POLICY = 'clock';

export class RamTier {
  readonly pages: number;
  readonly blockBytes: number;
  /** Dirty pages allowed at once; writes beyond it go to the SSD tier directly. */
  dirtyMax: number;
  private readonly arena: Buffer;
  private readonly originOf: Float64Array;
  private readonly state: Uint8Array;
  private readonly index: BlockIndex;
  private readonly policy: ReplacementPolicy;
  private readonly freeStack: Int32Array;
  private freeCount: number;
  // Dirty FIFO: a doubly linked list through the pages, oldest at the head.
  private readonly dirtyPrev: Int32Array;
  private readonly dirtyNext: Int32Array;
  private readonly dirtySince: Float64Array;
  private dirtyHead = NONE;
  private dirtyTail = NONE;
  private dirtyPages = 0;
  /** Loans per page (replies in flight that send the page's bytes). */
  private readonly loans: Uint16Array;
  private lentPages = 0;
  /** Blocks moved off a lent page by a write (copy on write), since the tier was made. */
  moves = 0;
  private readonly lentMax: number;
  private readonly victimCheck = (page: number): boolean => (this.state[page]! & PAGE_DIRTY) === 0 && this.loans[page] === 0;

  constructor(pages: number, blockBytes: number, dirtyMax: number) {
    assert(Number.isSafeInteger(pages) && pages > 0, 'a RAM tier needs at least one page');
    this.pages = pages;
    this.blockBytes = blockBytes;
    this.dirtyMax = dirtyMax;
    this.arena = Buffer.allocUnsafeSlow(pages * blockBytes);
    this.originOf = new Float64Array(pages);
    this.state = new Uint8Array(pages);
    this.index = new BlockIndex(pages, (page) => this.originOf[page]!);
    this.policy = createPolicy(RAM_POLICY, { cacheBlocks: pages, assoc: pages, originOf: (page) => this.originOf[page]! });
    this.freeStack = new Int32Array(pages);
    for (let i = 0; i < pages; i++) this.freeStack[i] = pages - 1 - i;
    this.freeCount = pages;
    this.dirtyPrev = new Int32Array(pages).fill(NONE);
    this.dirtyNext = new Int32Array(pages).fill(NONE);
    this.dirtySince = new Float64Array(pages);
    this.loans = new Uint16Array(pages);
    this.lentMax = Math.floor((pages * RAM_PINNED_PERCENT) / 100);
  }

  get residentPages(): number {
    return this.pages - this.freeCount;
  }

  get dirtyCount(): number {
    return this.dirtyPages;
  }

  /** Pages lent to replies in flight (orphans included). */
  get lentCount(): number {
    return this.lentPages;
  }

  /** Bytes held: the arena plus the bookkeeping. */
  get memoryBytes(): number {
    return this.arena.byteLength + this.originOf.byteLength + this.state.byteLength + this.index.memoryBytes +
      this.policy.memoryBytes + this.freeStack.byteLength + this.dirtyPrev.byteLength * 2 + this.dirtySince.byteLength +
      this.loans.byteLength;
  }

  /** The page holding `originBlock`, or -1. */
  lookup(originBlock: number): number {
    return this.index.get(originBlock);
  }

  isDirty(page: number): boolean {
    return (this.state[page]! & PAGE_DIRTY) !== 0;
  }


  /** Copies `length` bytes of a page, from `inner`, into target[at..]. Counts as a hit. */
  copyOut(page: number, inner: number, target: Buffer, at: number, length: number): void {
    const start = page * this.blockBytes + inner;
    this.arena.copy(target, at, start, start + length);
    this.policy.hit(page);
  }

  /**
   * Copies `length` bytes from `pages` consecutive pages starting at `firstPage`
   * (from `inner` in the first) into target[at..]. Counts as a hit on each.
   */
  copyOutRun(firstPage: number, pages: number, inner: number, target: Buffer, at: number, length: number): void {
    assert(firstPage >= 0 && firstPage + pages <= this.pages && inner + length <= pages * this.blockBytes);
    const start = firstPage * this.blockBytes + inner;
    this.arena.copy(target, at, start, start + length);
    for (let page = firstPage; page < firstPage + pages; page++) this.policy.hit(page);
  }

  /**
   * Appends (first page, page count) for each run of consecutive pages holding
   * blocks first..last, in block order, to `runs`. False (runs unspecified) if
   * one of the blocks is not resident.
   */
  pageRuns(first: number, last: number, runs: number[]): boolean {
    let runPage = this.index.get(first);
    if (runPage < 0) return false;
    let runLength = 1;
    for (let block = first + 1; block <= last; block++) {
      const page = this.index.get(block);
      if (page < 0) return false;
      if (page === runPage + runLength) {
        runLength++;
        continue;
      }
      runs.push(runPage, runLength);
      runPage = page;
      runLength = 1;
    }
    runs.push(runPage, runLength);
    return true;
  }

  /** True if `pages` more pages may be lent now (a page lent twice counts twice: conservative). */
  canLend(pages: number): boolean {
    return this.lentPages + pages <= this.lentMax;
  }

  /**
   * Lends `length` bytes from `pages` consecutive resident pages starting at
   * `firstPage` (from `inner` in the first) as one view of the arena; the pages
   * stay unchanged until giveBack(firstPage, pages). Counts as a hit on each.
   * The caller checked canLend.
   */
  lendRun(firstPage: number, pages: number, inner: number, length: number): Buffer {
    assert(firstPage >= 0 && firstPage + pages <= this.pages && inner + length <= pages * this.blockBytes);
    for (let page = firstPage; page < firstPage + pages; page++) {
      assert((this.state[page]! & PAGE_VALID) !== 0 && this.loans[page]! < PAGE_LOANS_MAX, 'lending a page that is not resident');
      if (this.loans[page]!++ === 0) this.lentPages++;
      this.policy.hit(page);
    }
    assert(this.lentPages <= this.lentMax, 'more pages lent than RAM_PINNED_PERCENT allows');
    const start = firstPage * this.blockBytes + inner;
    return this.arena.subarray(start, start + length);
  }

  /** Ends one loan of each of the pages lendRun lent; an orphan whose last loan ends is free. */
  giveBack(firstPage: number, pages: number): void {
    for (let page = firstPage; page < firstPage + pages; page++) {
      assert(this.loans[page]! > 0, 'giving back a page that is not lent');
      if (--this.loans[page]! !== 0) continue;
      this.lentPages--;
      if (this.state[page] === PAGE_ORPHAN) {
        this.state[page] = 0;
        this.freeStack[this.freeCount++] = page;
      }
    }
  }

  /**
   * Copies source[from..from+length] into the block's page at `inner` and
   * returns the page now holding the block: the same page, or a fresh copy of
   * it when the page is lent (copy on write). Callers use the returned page.
   */
  copyIn(page: number, inner: number, source: Buffer, from: number, length: number): number {
    const target = this.loans[page] === 0 ? page : this.move(page);
    source.copy(this.arena, target * this.blockBytes + inner, from, from + length);
    return target;
  }

  /** The page's bytes as a view (for device I/O straight from the arena). */
  view(page: number, length = this.blockBytes): Buffer {
    const start = page * this.blockBytes;
    return this.arena.subarray(start, start + length);
  }

  /**
   * A page for `originBlock`, which must not be resident: a free page or a clean
   * victim. Its content is undefined until the caller fills it. -1 if every page is dirty.
   */
  allocate(originBlock: number): number {
    assert(this.index.get(originBlock) < 0, 'allocating a RAM page for a resident block');
    let page: number;
    if (this.freeCount > 0) page = this.freeStack[--this.freeCount]!;
    else {
      const victim = this.policy.victim(0, originBlock, this.victimCheck);
      if (victim === NO_BLOCK) return -1;
      page = victim;
      this.index.delete(this.originOf[page]!);
      this.policy.remove(page, true);
    }
    this.originOf[page] = originBlock;
    this.state[page] = PAGE_VALID;
    this.index.insert(originBlock, page);
    this.policy.insert(page, originBlock);
    return page;
  }

  /** Puts a clean copy of a whole block in RAM unless it is resident already. */
  putClean(originBlock: number, source: Buffer, from: number, length: number): void {
    if (this.index.get(originBlock) >= 0) return;
    const page = this.allocate(originBlock);
    if (page < 0) return;
    this.copyIn(page, 0, source, from, length);
    if (length < this.blockBytes) this.arena.fill(0, page * this.blockBytes + length, (page + 1) * this.blockBytes);
  }

  /** Drops the block's page, dirty or clean (its content changed below, or it was trimmed). */
  drop(originBlock: number): void {
    const page = this.index.get(originBlock);
    if (page < 0) return;
    if (this.isDirty(page)) this.unlinkDirty(page);
    this.index.delete(originBlock);
    this.policy.remove(page, false);
    if (this.loans[page] !== 0) {
      this.state[page] = PAGE_ORPHAN; // its bytes are still being sent: free when the loans end
      return;
    }
    this.state[page] = 0;
    this.freeStack[this.freeCount++] = page;
  }

  /** Resident blocks in [first, end), for range invalidation (walks pages when the range is larger). */
  residentIn(first: number, end: number): number[] {
    const found: number[] = [];
    if (end - first > this.pages) {
      for (let page = 0; page < this.pages; page++) {
        const block = this.originOf[page]!;
        if ((this.state[page]! & PAGE_VALID) !== 0 && block >= first && block < end) found.push(block);
      }
    } else {
      for (let block = first; block < end; block++) if (this.index.get(block) >= 0) found.push(block);
    }
    return found;
  }

  /** True if a block in [first, end) has a dirty page (walks the dirty list when the range is larger). */
  anyDirtyIn(first: number, end: number): boolean {
    if (end - first > this.dirtyPages) {
      for (let page = this.dirtyHead; page !== NONE; page = this.dirtyNext[page]!) {
        const block = this.originOf[page]!;
        if (block >= first && block < end) return true;
      }
      return false;
    }
    for (let block = first; block < end; block++) {
      const page = this.index.get(block);
      if (page >= 0 && this.isDirty(page)) return true;
    }
    return false;
  }

  markDirty(page: number, now: number): void {
    if (this.isDirty(page)) return;
    this.state[page]! |= PAGE_DIRTY;
    this.dirtySince[page] = now;
    this.linkDirtyAfter(this.dirtyTail, page);
  }

  markClean(page: number): void {
    if (!this.isDirty(page)) return;
    this.unlinkDirty(page);
    this.state[page]! &= ~PAGE_DIRTY;
  }

  /** Milliseconds (on the caller's clock) the oldest dirty page has been dirty since, or -1. */
  oldestDirtySince(): number {
    return this.dirtyHead === NONE ? -1 : this.dirtySince[this.dirtyHead]!;
  }

  /** The oldest dirty block not in `skip`, or -1 (walks past the skipped ones only). */
  oldestDirtyExcept(skip: ReadonlySet<number>): number {
    for (let page = this.dirtyHead; page !== NONE; page = this.dirtyNext[page]!) {
      const block = this.originOf[page]!;
      if (!skip.has(block)) return block;
    }
    return -1;
  }

  /** Up to `max` dirty blocks, oldest first. */
  oldestDirty(max: number): number[] {
    const blocks: number[] = [];
    for (let page = this.dirtyHead; page !== NONE && blocks.length < max; page = this.dirtyNext[page]!) {
      blocks.push(this.originOf[page]!);
    }
    return blocks;
  }

  /**
   * Moves a lent page's block to another page (same bytes, same dirty state and
   * place in the dirty FIFO); the lent page becomes an orphan. Returns the new page.
   */
  private move(page: number): number {
    const block = this.originOf[page]!;
    const dirty = this.isDirty(page);
    this.index.delete(block);
    this.policy.remove(page, false);
    this.state[page] = PAGE_ORPHAN | (dirty ? PAGE_DIRTY : 0); // never a victim while allocate looks
    const fresh = this.allocate(block);
    assert(fresh >= 0, 'no page to move a lent block to: more dirty or lent pages than the bounds allow');
    this.moves++;
    this.arena.copy(this.arena, fresh * this.blockBytes, page * this.blockBytes, (page + 1) * this.blockBytes);
    if (dirty) {
      // The fresh page takes the lent page's place in the FIFO.
      this.state[fresh]! |= PAGE_DIRTY;
      this.dirtySince[fresh] = this.dirtySince[page]!;
      this.linkDirtyAfter(page, fresh);
      this.unlinkDirty(page);
    }
    this.state[page] = PAGE_ORPHAN;
    return fresh;
  }

  /** Links `page` into the dirty FIFO right after `anchor` (NONE: at the head). */
  private linkDirtyAfter(anchor: number, page: number): void {
    const next = anchor === NONE ? this.dirtyHead : this.dirtyNext[anchor]!;
    this.dirtyPrev[page] = anchor;
    this.dirtyNext[page] = next;
    if (anchor !== NONE) this.dirtyNext[anchor] = page;
    else this.dirtyHead = page;
    if (next !== NONE) this.dirtyPrev[next] = page;
    else this.dirtyTail = page;
    this.dirtyPages++;
  }

  private unlinkDirty(page: number): void {
    const prev = this.dirtyPrev[page]!;
    const next = this.dirtyNext[page]!;
    if (prev !== NONE) this.dirtyNext[prev] = next;
    else this.dirtyHead = next;
    if (next !== NONE) this.dirtyPrev[next] = prev;
    else this.dirtyTail = prev;
    this.dirtyPrev[page] = NONE;
    this.dirtyNext[page] = NONE;
    this.dirtyPages--;
  }
}
