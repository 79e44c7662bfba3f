// The coherence fuzzer (coherence-fuzz.ts) over a fixed set of seeds, in both
// modes that keep data in the cache: no stale, foreign or lost block.
// Longer sweeps: node dist/src/testing/coherence-fuzz-main.js --seeds N --seed S.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCoherenceFuzz } from './coherence-fuzz.js';

for (const [mode, first, count] of [['writeback', 1, 24], ['writethrough', 101, 8]] as const) {
  test(`coherence fuzzer, ${mode}: seeds ${first}..${first + count - 1} see no stale, foreign or lost block`, async () => {
    let zeroCopyReads = 0;
    for (let seed = first; seed < first + count; seed++) {
      const result = await runCoherenceFuzz(seed, mode);
      assert.deepEqual(result.violations, [], `seed ${seed} (${result.config})`);
      zeroCopyReads += result.zeroCopyReads;
    }
    assert.ok(zeroCopyReads > 0, 'some reads went zero-copy');
  });
}
