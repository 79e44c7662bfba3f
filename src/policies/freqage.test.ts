// freqage (the default before freqctx) resists scans (a one-pass sweep does not
// flush a hot working set), hands the decisions to its recency expert when the
// working set moves, and its state plus the mapping fits 16 bytes per block.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Replayer } from '../sim/replayer.js';
import { FreqAgePolicy } from './freqage.js';
import { LruPolicy } from './lru.js';
import { checkMovingWorkingSet, hitsAfterScan } from '../testing/policy-checks.js';

test('freqage: a long scan leaves most of the hot set cached (LRU loses all of it)', () => {
  const cacheBlocks = 128;
  const freqage = hitsAfterScan(new Replayer(cacheBlocks, cacheBlocks, new FreqAgePolicy({ cacheBlocks, assoc: cacheBlocks })));
  const lru = hitsAfterScan(new Replayer(cacheBlocks, cacheBlocks, new LruPolicy({ cacheBlocks, assoc: cacheBlocks })));
  assert.equal(lru, 0);
  assert.ok(freqage >= 48, `freqage kept ${freqage} of 64 hot blocks`);
});

test('freqage: on a moving working set (stale frequencies) it beats tinylfu there and stays within 5 points of LRU', () => {
  // Reads only: frequency from old phases misleads.
  checkMovingWorkingSet('freqage', (cacheBlocks, assoc) => new FreqAgePolicy({ cacheBlocks, assoc }), 0);
});

test('freqage: state is about 7 bytes per block at every cache size (origin read from the mapping)', () => {
  for (const [cacheBlocks, assoc] of [[1_000_448, 512], [73, 73], [1836, 1836]] as const) {
    const origins = new Uint32Array(cacheBlocks);
    const policy = new FreqAgePolicy({ cacheBlocks, assoc, originOf: (cacheBlock) => origins[cacheBlock]! });
    const perBlock = policy.memoryBytes / cacheBlocks;
    assert.ok(perBlock > 6.9 && perBlock < 7.5, `${cacheBlocks} blocks: ${perBlock} B/block`);
  }
});
