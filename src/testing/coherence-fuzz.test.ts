// The coherence fuzzer (coherence-fuzz.ts) over a fixed set of seeds, in both
// modes that keep data in the cache: no stale, foreign or lost block, no lent
// bytes changed before they were given back, and no seed that hangs (each runs
// in a worker thread with SEED_TIMEOUT_MS of wall-clock time: timed-seed-runner.ts).
// Longer sweeps: node dist/src/testing/coherence-fuzz-main.js --seeds N --seed S.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CacheMode } from '../format/superblock.js';
import { TimedSeedRunner } from './timed-seed-runner.js';

for (const [mode, first, count] of [['writeback', 1, 24], ['writethrough', 101, 8]] as const) {
  test(`coherence fuzzer, ${mode}: seeds ${first}..${first + count - 1} see no stale, foreign or lost block`, async () => {
    const runner = new TimedSeedRunner<CacheMode>(new URL('./coherence-fuzz-worker.js', import.meta.url));
    let zeroCopyReads = 0;
    try {
      for (let seed = first; seed < first + count; seed++) {
        const result = await runner.run(seed, mode);
        assert.deepEqual(result.violations, [], `seed ${seed} (${result.config})`);
        zeroCopyReads += result.zeroCopyReads;
      }
    } finally {
      await runner.stop();
    }
    assert.ok(zeroCopyReads > 0, 'some reads went zero-copy');
  });
}
