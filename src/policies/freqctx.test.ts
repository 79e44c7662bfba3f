// freqctx, the default policy (freqage + a write-aware expert + regret from hits
// on the other experts' candidates), resists scans like freqage, uses the access
// context only as a hint (works without it, e.g. when rebuilt from a warm cache),
// follows a moving working set, and its state plus the mapping fits 16 bytes per
// block at every cache size.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Replayer } from '../sim/replayer.js';
import { FreqCtxPolicy } from './freqctx.js';
import { checkMovingWorkingSet, hitsAfterScan } from '../testing/policy-checks.js';
import { WRITE_ACCESS } from './policy.js';
import { BlockIndex } from '../cache/block-index.js';
import { SetMapping } from '../cache/set-mapping.js';

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

test('freqctx: on a moving working set (stale frequencies) it beats tinylfu there and stays within 5 points of LRU', () => {
  checkMovingWorkingSet('freqctx', (cacheBlocks, assoc) => new FreqCtxPolicy({ cacheBlocks, assoc }), 4); // every 4th access a write
});

test('freqctx: state is about 7 bytes per block at every cache size, and with the mapping under 16 at 1,000,448 blocks', () => {
  // The history and ghost tables are sized per block (no floor), so a small cache is measured with what a large one gets.
  for (const [cacheBlocks, assoc] of [[73, 73], [1836, 1836], [1_000_448, 512]] as const) {
    const origins = new Uint32Array(cacheBlocks);
    const policy = new FreqCtxPolicy({ cacheBlocks, assoc, originOf: (cacheBlock) => origins[cacheBlock]! });
    const perBlock = policy.memoryBytes / cacheBlocks;
    assert.ok(perBlock > 6.9 && perBlock < 7.5, `${cacheBlocks} blocks: ${perBlock} B/block`);
    if (cacheBlocks > 1_000_000) {
      // The engine's mapping: per-set BlockIndex tables + a Uint32 origin per cache block.
      const index = new BlockIndex(cacheBlocks, (cacheBlock) => origins[cacheBlock]!, new SetMapping(cacheBlocks, assoc));
      const total = (policy.memoryBytes + index.memoryBytes + origins.byteLength) / cacheBlocks;
      assert.ok(total <= 16, `mapping + freqctx: ${total} B/block`);
    }
  }
});
