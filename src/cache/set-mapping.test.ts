import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SetMapping } from './set-mapping.js';

test('runs of consecutive origin blocks map to one set (dm-cache hash_block)', () => {
  const mapping = new SetMapping(512 * 64, 512);
  for (let run = 0; run < 100; run++) {
    const set = mapping.setOf(run * 512);
    for (let i = 1; i < 512; i++) assert.equal(mapping.setOf(run * 512 + i), set);
  }
  const small = new SetMapping(8 * 16, 8);
  assert.equal(small.setOf(16), small.setOf(23));
});

test('sets are used evenly and stay in range, also for origin blocks beyond 2^32', () => {
  const mapping = new SetMapping(64 * 100, 64);
  const counts = new Array(mapping.sets).fill(0);
  for (let run = 0; run < 100_000; run++) counts[mapping.setOf(run * 64 + 2 ** 40)]++;
  assert.ok(Math.min(...counts) > 700 && Math.max(...counts) < 1300, `uneven: ${Math.min(...counts)}..${Math.max(...counts)}`);
  const full = new SetMapping(73, 73);
  assert.equal(full.sets, 1);
  assert.equal(full.setOf(123456789), 0);
  assert.equal(mapping.setOfCacheBlock(64 * 7 + 3), 7);
  assert.equal(mapping.firstBlockOf(7), 448);
});

test('the mapping never changes: records on disk are found in their origin block\'s set', () => {
  // The formula as first written (one double division), for origin blocks on both sides of 2^32.
  const reference = (originBlock: number, sets: number, shift: number): number => {
    const run = Math.floor(originBlock / 2 ** shift);
    const hash = Math.imul((run >>> 0) ^ Math.imul(Math.floor(run / 2 ** 32) >>> 0, 0x85ebca6b), 0x9e3779b1) >>> 0;
    return Math.floor((hash * sets) / 2 ** 32);
  };
  for (const [cacheBlocks, assoc] of [[512 * 1954, 512], [8 * 5, 8], [1024 * 3, 1024]] as const) {
    const mapping = new SetMapping(cacheBlocks, assoc);
    for (let i = 0; i < 20_000; i++) {
      const originBlock = i % 2 === 0 ? Math.floor(Math.random() * 2 ** 32) : Math.floor(Math.random() * 2 ** 53);
      assert.equal(mapping.setOf(originBlock), reference(originBlock, mapping.sets, mapping.consecutiveShift), `${originBlock}`);
    }
    assert.equal(mapping.setOf(2 ** 32 - 1), reference(2 ** 32 - 1, mapping.sets, mapping.consecutiveShift));
    assert.equal(mapping.setOf(2 ** 32), reference(2 ** 32, mapping.sets, mapping.consecutiveShift));
  }
});
