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
