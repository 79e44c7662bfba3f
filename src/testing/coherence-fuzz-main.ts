// CLI for the coherence fuzzer (src/testing/coherence-fuzz.ts); testing only.
//   node dist/src/testing/coherence-fuzz-main.js --seeds N [--seed S] [--mode writeback|writethrough] [--timeout-s T]
// Each seed runs in a worker thread with a wall-clock limit (SEED_TIMEOUT_MS unless
// --timeout-s): a seed that hangs is reported with its last operations and the sweep
// goes on. Prints each failing seed with its first violations and a summary; exit 1 if any failed.
import { parseArgs } from 'node:util';
import { CacheMode } from '../format/superblock.js';
import { SEED_TIMEOUT_MS, TimedSeedRunner } from './timed-seed-runner.js';

/** Violations printed per failing seed. */
const VIOLATIONS_SHOWN = 3;

const USAGE = 'usage: coherence-fuzz-main --seeds N [--seed S] [--mode writeback|writethrough|writearound] [--timeout-s T]\n';

async function main(): Promise<number> {
  let values: { seeds?: string; seed?: string; mode?: string; 'timeout-s'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({ options: { seeds: { type: 'string' }, seed: { type: 'string' }, mode: { type: 'string' }, 'timeout-s': { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (error) {
    process.stderr.write(`coherence-fuzz-main: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const count = Number(values.seeds ?? 20);
  const first = Number(values.seed ?? 1);
  const mode = (values.mode ?? 'writeback') as CacheMode;
  const timeoutMs = values['timeout-s'] === undefined ? SEED_TIMEOUT_MS : Number(values['timeout-s']) * 1000;
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(first) || !['writeback', 'writethrough', 'writearound'].includes(mode) ||
    !(timeoutMs > 0)) {
    process.stderr.write(USAGE);
    return 2;
  }
  const runner = new TimedSeedRunner<CacheMode>(new URL('./coherence-fuzz-worker.js', import.meta.url), timeoutMs);
  const started = performance.now();
  let failing = 0;
  let hung = 0;
  let zeroCopyReads = 0;
  let moves = 0;
  let slowest = { seed: first, elapsedMs: 0 };
  try {
    for (let seed = first; seed < first + count; seed++) {
      const result = await runner.run(seed, mode);
      zeroCopyReads += result.zeroCopyReads;
      moves += result.moves;
      if (!result.hung && result.elapsedMs > slowest.elapsedMs) slowest = { seed, elapsedMs: result.elapsedMs };
      if (result.violations.length === 0) continue;
      failing++;
      if (result.hung) hung++;
      process.stdout.write(`seed ${seed} (${result.config}): ${result.violations.slice(0, VIOLATIONS_SHOWN).join('; ')}\n`);
    }
  } finally {
    await runner.stop();
  }
  process.stdout.write(`seeds ${first}..${first + count - 1} (${mode}): ${count} run, ${failing} failing (${hung} hung), ` +
    `${zeroCopyReads} zero-copy reads, ${moves} lent pages moved, slowest finished seed ${slowest.seed} ${(slowest.elapsedMs / 1000).toFixed(1)} s, ` +
    `${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return failing > 0 ? 1 : 0;
}

process.exitCode = await main();
