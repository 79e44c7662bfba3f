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
