// freqctx (freqage + a write-aware expert + regret from hits on the other experts'
// candidates) resists scans like freqage, uses the access context only as a hint
// (works without it, e.g. when rebuilt from a warm cache), and its state plus the
// mapping fits 16 bytes per block.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Replayer } from '../sim/replayer.js';
import { FreqCtxPolicy } from './freqctx.js';
import { hitsAfterScan } from '../testing/policy-checks.js';
import { WRITE_ACCESS } from './policy.js';

test('freqctx: a long scan leaves most of the hot set cached (LRU loses all of it)', () => {
  const cacheBlocks = 128;
  const kept = hitsAfterScan(new Replayer(cacheBlocks, cacheBlocks, new FreqCtxPolicy({ cacheBlocks, assoc: cacheBlocks })));
  assert.ok(kept >= 48, `freqctx kept ${kept} of 64 hot blocks`);
});

test('freqctx: the write expert keeps a block last written over an equally old, equally used block last read', () => {
  const cacheBlocks = 4;
  const policy = new FreqCtxPolicy({ cacheBlocks, assoc: cacheBlocks }, { initialWeights: [0.1, 0.1, 0.8] });
  policy.insert(0, 100, WRITE_ACCESS);
  policy.insert(1, 101); // no context (a rebuild): counts as read
  for (let block = 2; block < 4; block++) policy.insert(block, 100 + block, WRITE_ACCESS);
  for (let access = 0; access < 8; access++) policy.admit(0, 1000 + access); // time passes
  assert.equal(policy.victim(0, 2000, () => true), 1);
  assert.equal(policy.expertDecisions[2], 1);
});

test('freqctx: state for 1,000,000 blocks (origin read from the mapping) is under 3.6 bytes per block', () => {
  const cacheBlocks = 1_000_000;
  const origins = new Uint32Array(cacheBlocks);
  const policy = new FreqCtxPolicy({ cacheBlocks, assoc: 500, originOf: (cacheBlock) => origins[cacheBlock]! });
  assert.ok(policy.memoryBytes / cacheBlocks < 3.6, `${policy.memoryBytes / cacheBlocks} B/block`);
});
