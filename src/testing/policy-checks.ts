// Checks shared by the policy tests (testing only; never imported by the product).
import assert from 'node:assert/strict';
import { Replayer } from '../sim/replayer.js';
import type { ReplacementPolicy } from '../policies/policy.js';
import { LruPolicy } from '../policies/lru.js';
import { TinyLfuPolicy } from '../policies/tinylfu.js';

/**
 * Scan resistance: 64 hot blocks are used 20 times, then 2,000 blocks are read
 * once (a scan); returns how many of the hot blocks still hit afterwards.
 */
export function hitsAfterScan(replayer: Replayer): number {
  const HOT = 64;
  for (let round = 0; round < 20; round++) for (let block = 0; block < HOT; block++) replayer.access(block, false);
  for (let block = 1_000_000; block < 1_002_000; block++) replayer.access(block, false); // the scan
  let hits = 0;
  for (let block = 0; block < HOT; block++) if (replayer.access(block, false)) hits++;
  return hits;
}

/** Hits of each policy on the same accesses (movingWorkingSetHits). */
export interface MovingHits {
  readonly mine: number;
  readonly lru: number;
  readonly tinylfu: number;
  readonly accesses: number;
}

/**
 * A moving working set (stale frequencies): 300,000 accesses in phases of
 * 20,000 over 900 blocks, each phase half new, replayed through `mine`, `lru`
 * and `tinylfu` alike; every `writeEvery`-th access is a write (0: none).
 */
export function movingWorkingSetHits(mine: Replayer, lru: Replayer, tinylfu: Replayer, writeEvery: number): MovingHits {
  let state = 99;
  const random = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const hits = { mine: 0, lru: 0, tinylfu: 0 };
  const accesses = 300_000;
  for (let step = 0; step < accesses; step++) {
    const block = Math.floor(step / 20_000) * 450 + Math.floor(random() * 900);
    const isWrite = writeEvery > 0 && step % writeEvery === 0;
    if (mine.access(block, isWrite)) hits.mine++;
    if (lru.access(block, isWrite)) hits.lru++;
    if (tinylfu.access(block, isWrite)) hits.tinylfu++;
  }
  return { ...hits, accesses };
}

/**
 * The moving-working-set check of a frequency policy, fully associative and at
 * assoc 128 (1,024 blocks): it must beat tinylfu (stale frequencies mislead it)
 * and stay within 5 points of LRU (a known weakness: docs/POLICIES.md).
 */
export function checkMovingWorkingSet(name: string, makePolicy: (cacheBlocks: number, assoc: number) => ReplacementPolicy, writeEvery: number): void {
  const cacheBlocks = 1024;
  for (const assoc of [cacheBlocks, 128]) {
    const mine = new Replayer(cacheBlocks, assoc, makePolicy(cacheBlocks, assoc));
    const lru = new Replayer(cacheBlocks, assoc, new LruPolicy({ cacheBlocks, assoc }));
    const tinylfu = new Replayer(cacheBlocks, assoc, new TinyLfuPolicy({ cacheBlocks, assoc }));
    const hits = movingWorkingSetHits(mine, lru, tinylfu, writeEvery);
    const report = `assoc ${assoc}: hit ratio ${name} ${hits.mine / hits.accesses}, LRU ${hits.lru / hits.accesses}, tinylfu ${hits.tinylfu / hits.accesses}`;
    assert.ok(hits.mine > hits.tinylfu, report);
    assert.ok(hits.mine / hits.accesses >= hits.lru / hits.accesses - 0.05, report);
  }
}
