import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RamTier } from './ram-tier.js';

const BLOCK = 4096;

function page(tier: RamTier, block: number): Buffer {
  const target = Buffer.alloc(BLOCK);
  tier.copyOut(tier.lookup(block), 0, target, 0, BLOCK);
  return target;
}

test('RamTier: clean copies are kept, looked up, and never overwrite a resident page', () => {
  const tier = new RamTier(4, BLOCK, 2);
  tier.putClean(10, Buffer.alloc(BLOCK, 1), 0, BLOCK);
  tier.putClean(10, Buffer.alloc(BLOCK, 2), 0, BLOCK);
  assert.ok(page(tier, 10).equals(Buffer.alloc(BLOCK, 1)), 'an existing page is newer than a read from below');
  assert.equal(tier.lookup(11), -1);
  // A short last block is zero-filled past its end.
  tier.putClean(12, Buffer.alloc(100, 7), 0, 100);
  const short = page(tier, 12);
  assert.ok(short.subarray(0, 100).equals(Buffer.alloc(100, 7)) && short.subarray(100).equals(Buffer.alloc(BLOCK - 100)));
});

test('RamTier: only clean pages are evicted; with every page dirty nothing can be allocated', () => {
  const tier = new RamTier(3, BLOCK, 3);
  for (const block of [1, 2, 3]) {
    const p = tier.allocate(block);
    tier.copyIn(p, 0, Buffer.alloc(BLOCK, block), 0, BLOCK);
    tier.markDirty(p, block);
  }
  assert.equal(tier.allocate(4), -1, 'dirty pages are never victims');
  tier.markClean(tier.lookup(2));
  const p = tier.allocate(4);
  assert.ok(p >= 0);
  assert.equal(tier.lookup(2), -1, 'the clean page was the victim');
  assert.ok(page(tier, 1).equals(Buffer.alloc(BLOCK, 1)) && page(tier, 3).equals(Buffer.alloc(BLOCK, 3)));
});

test('RamTier: dirty pages leave oldest first; drop and markClean unlink them', () => {
  const tier = new RamTier(8, BLOCK, 8);
  for (const block of [5, 6, 7, 8]) tier.markDirty(tier.allocate(block), block * 10);
  assert.deepEqual(tier.oldestDirty(10), [5, 6, 7, 8]);
  assert.equal(tier.oldestDirtyExcept(new Set([5, 6])), 7);
  assert.equal(tier.oldestDirtyExcept(new Set([5, 6, 7, 8])), -1);
  assert.equal(tier.oldestDirtySince(), 50);
  tier.markDirty(tier.lookup(5), 999); // already dirty: keeps its place and its age
  assert.deepEqual(tier.oldestDirty(2), [5, 6]);
  tier.drop(6);
  tier.markClean(tier.lookup(5));
  assert.deepEqual(tier.oldestDirty(10), [7, 8]);
  assert.equal(tier.dirtyCount, 2);
  assert.equal(tier.oldestDirtySince(), 70);
  assert.equal(tier.lookup(6), -1);
  assert.equal(tier.residentPages, 3);
});

test('RamTier: residentIn finds resident blocks of a range by index or by walking the pages', () => {
  const tier = new RamTier(4, BLOCK, 4);
  for (const block of [3, 100, 2 ** 40]) tier.allocate(block);
  assert.deepEqual(tier.residentIn(0, 4), [3]);
  assert.deepEqual(tier.residentIn(0, 2 ** 41).sort((a, b) => a - b), [3, 100, 2 ** 40]);
});

test('RamTier: copyOutRun copies across consecutive pages from any inner offset', () => {
  const tier = new RamTier(4, BLOCK, 4);
  for (const block of [20, 21, 22]) {
    const p = tier.allocate(block);
    tier.copyIn(p, 0, Buffer.alloc(BLOCK, block), 0, BLOCK);
  }
  const first = tier.lookup(20);
  assert.deepEqual([tier.lookup(21), tier.lookup(22)], [first + 1, first + 2], 'a fresh tier hands out pages in order');
  const target = Buffer.alloc(BLOCK + 200);
  tier.copyOutRun(first, 3, BLOCK - 100, target, 0, BLOCK + 200);
  const expected = Buffer.concat([Buffer.alloc(100, 20), Buffer.alloc(BLOCK, 21), Buffer.alloc(100, 22)]);
  assert.ok(target.equals(expected));
});

test('RamTier: anyDirtyIn sees dirty pages of a range, by index or by walking the dirty list', () => {
  const tier = new RamTier(8, BLOCK, 8);
  tier.allocate(3);
  tier.markDirty(tier.allocate(7), 0);
  tier.markDirty(tier.allocate(2 ** 40), 0);
  assert.equal(tier.anyDirtyIn(0, 5), false, 'a clean page is not dirty');
  assert.equal(tier.anyDirtyIn(5, 8), true);
  assert.equal(tier.anyDirtyIn(8, 2 ** 40), false, 'the walk of the dirty list respects the range');
  assert.equal(tier.anyDirtyIn(8, 2 ** 41), true);
});

/** A tier of 8 pages holding blocks 30..33 in pages 0..3, each filled with its block number. */
function lendingTier(): RamTier {
  const tier = new RamTier(8, BLOCK, 4);
  for (const block of [30, 31, 32, 33]) tier.copyIn(tier.allocate(block), 0, Buffer.alloc(BLOCK, block), 0, BLOCK);
  return tier;
}

test('RamTier: pageRuns splits blocks into runs of consecutive pages, and fails on a missing block', () => {
  const tier = lendingTier();
  const runs: number[] = [];
  assert.equal(tier.pageRuns(30, 33, runs), true);
  assert.deepEqual(runs, [tier.lookup(30), 4]);
  tier.drop(31);
  tier.allocate(99); // takes block 31's old page
  tier.copyIn(tier.allocate(31), 0, Buffer.alloc(BLOCK, 31), 0, BLOCK);
  runs.length = 0;
  assert.equal(tier.pageRuns(30, 33, runs), true);
  assert.deepEqual(runs, [tier.lookup(30), 1, tier.lookup(31), 1, tier.lookup(32), 2]);
  assert.equal(tier.pageRuns(30, 34, []), false);
});

test('RamTier: a write to a lent page moves the block; the lent bytes never change', () => {
  const tier = lendingTier();
  const lentPage = tier.lookup(31);
  const view = tier.lendRun(lentPage, 2, 100, BLOCK);
  const before = Buffer.from(view);
  const moved = tier.copyIn(lentPage, 0, Buffer.alloc(10, 0xee), 0, 10);
  assert.notEqual(moved, lentPage, 'copy on write');
  assert.equal(tier.lookup(31), moved);
  assert.ok(view.equals(before), 'the reply in flight still sends the bytes read');
  const now = page(tier, 31);
  assert.ok(now.subarray(0, 10).equals(Buffer.alloc(10, 0xee)) && now.subarray(10).equals(Buffer.alloc(BLOCK - 10, 31)), 'the moved page kept the rest of the block');
  // An unlent page is written in place.
  assert.equal(tier.copyIn(tier.lookup(30), 0, Buffer.alloc(1, 1), 0, 1), tier.lookup(30));
  // The orphan is not free until its loan ends: fill the tier, the lent page is never handed out.
  const taken = new Set<number>();
  for (let block = 40; block < 44; block++) taken.add(tier.allocate(block));
  assert.ok(!taken.has(lentPage), 'a lent orphan page is not reused');
  tier.giveBack(lentPage, 2);
  assert.equal(tier.lentCount, 0);
  assert.equal(tier.lookup(32), lentPage + 1, 'block 32 (lent, never written) stayed in place');
});

test('RamTier: a moved dirty page keeps its age and its place in the dirty FIFO', () => {
  const tier = lendingTier();
  for (const block of [30, 31, 32]) tier.markDirty(tier.lookup(block), block);
  const lent = tier.lookup(31);
  tier.lendRun(lent, 1, 0, BLOCK);
  const moved = tier.copyIn(lent, 0, Buffer.alloc(1, 9), 0, 1);
  assert.ok(tier.isDirty(moved) && !tier.isDirty(lent));
  assert.deepEqual(tier.oldestDirty(10), [30, 31, 32]);
  assert.equal(tier.dirtyCount, 3);
  tier.markClean(tier.lookup(30));
  assert.equal(tier.oldestDirtySince(), 31, 'the moved page kept the time it became dirty');
});

test('RamTier: a dropped lent page is freed only when its last loan ends; victims skip lent pages', () => {
  const tier = new RamTier(4, BLOCK, 2);
  for (const block of [1, 2, 3, 4]) tier.allocate(block);
  const lent = tier.lookup(1);
  assert.equal(tier.canLend(1), true);
  tier.lendRun(lent, 1, 0, BLOCK);
  assert.equal(tier.canLend(1), false, '25% of 4 pages: one may be lent');
  for (let block = 10; block < 13; block++) assert.notEqual(tier.allocate(block), lent, 'a lent page is never a victim');
  assert.equal(tier.lookup(1), lent);
  tier.drop(1);
  assert.equal(tier.residentPages, 4, 'the orphan is not free yet');
  tier.giveBack(lent, 1);
  assert.equal(tier.residentPages, 3);
  assert.equal(tier.allocate(20), lent, 'freed when the loan ended');
});
