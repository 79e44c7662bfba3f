// CLI for the coherence fuzzer (src/testing/coherence-fuzz.ts); testing only.
//   node dist/src/testing/coherence-fuzz-main.js --seeds N [--seed S] [--mode writeback|writethrough]
// Prints each failing seed with its first violations and a summary; exit 1 if any failed.
import { parseArgs } from 'node:util';
import { runCoherenceFuzz } from './coherence-fuzz.js';
import { CacheMode } from '../format/superblock.js';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { seeds: { type: 'string' }, seed: { type: 'string' }, mode: { type: 'string' } } });
  const count = Number(values.seeds ?? 20);
  const first = Number(values.seed ?? 1);
  const mode = (values.mode ?? 'writeback') as CacheMode;
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(first) || !['writeback', 'writethrough', 'writearound'].includes(mode)) {
    process.stderr.write('usage: coherence-fuzz-main --seeds N [--seed S] [--mode writeback|writethrough|writearound]\n');
    return 2;
  }
  const started = performance.now();
  let failing = 0;
  let zeroCopyReads = 0;
  let moves = 0;
  for (let seed = first; seed < first + count; seed++) {
    const result = await runCoherenceFuzz(seed, mode);
    zeroCopyReads += result.zeroCopyReads;
    moves += result.moves;
    if (result.violations.length === 0) continue;
    failing++;
    process.stdout.write(`seed ${seed} (${result.config}): ${result.violations.slice(0, 3).join('; ')}\n`);
  }
  process.stdout.write(`seeds ${first}..${first + count - 1} (${mode}): ${count} run, ${failing} failing (${zeroCopyReads} zero-copy reads, ${moves} lent pages moved), ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return failing > 0 ? 1 : 0;
}

process.exitCode = await main();
