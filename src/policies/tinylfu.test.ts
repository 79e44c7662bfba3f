// The default policy resists scans (a one-pass sweep does not flush a hot
// working set), and its state plus the mapping fits 16 bytes per block.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Replayer } from '../sim/replayer.js';
import { LruPolicy } from './lru.js';
import { hitsAfterScan } from '../testing/policy-checks.js';
import { TinyLfuPolicy } from './tinylfu.js';

test('tinylfu: a long scan leaves most of the hot set cached (LRU loses all of it)', () => {
  const cacheBlocks = 128;
  const tinylfu = hitsAfterScan(new Replayer(cacheBlocks, cacheBlocks, new TinyLfuPolicy({ cacheBlocks, assoc: cacheBlocks })));
  const lru = hitsAfterScan(new Replayer(cacheBlocks, cacheBlocks, new LruPolicy({ cacheBlocks, assoc: cacheBlocks })));
  assert.equal(lru, 0);
  assert.ok(tinylfu >= 48, `tinylfu kept ${tinylfu} of 64 hot blocks`);
});

test('tinylfu: state for 1,000,000 blocks (origin read from the mapping) is under 3.6 bytes per block', () => {
  const cacheBlocks = 1_000_000;
  const origins = new Uint32Array(cacheBlocks);
  const policy = new TinyLfuPolicy({ cacheBlocks, assoc: 500, originOf: (cacheBlock) => origins[cacheBlock]! });
  assert.ok(policy.memoryBytes / cacheBlocks < 3.6, `${policy.memoryBytes / cacheBlocks} B/block`);
});
