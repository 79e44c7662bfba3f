// The crash simulator over a few hundred seeds finds no violation of the
// durability contract (CONTRACT.md rules 1-4): random concurrent requests in
// every mode, with and without the RAM tier, power lost at random instants (also during clean shutdown and
// during recovery), recovery, churn, and the origin exact after writeback.
// A failure prints the seed; replay it with
//   node dist/src/testing/sim-main.js --seeds 1 --seed S --ops 60 --cycles 2 --origin-mib-max 2
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSimulation } from '../../src/testing/crash-simulator.js';

/** Seeds run by the suite; `npm run sim -- --seeds N` runs more, and longer. */
const SEEDS = Number(process.env['CRASH_SIM_SEEDS'] ?? 200);
const FIRST_SEED = 1;
const OPS_PER_CYCLE = 60;
const CRASH_CYCLES = 2;
const ORIGIN_MIB_MAX = 2;

test(`crash simulator: ${SEEDS} seeds, no durability violation`, { timeout: 300_000 }, async () => {
  const failures: string[] = [];
  let cycles = 0;
  for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++) {
    const result = await runSimulation({ seed, opsPerCycle: OPS_PER_CYCLE, crashCycles: CRASH_CYCLES, originMiBMax: ORIGIN_MIB_MAX });
    cycles += result.cycles;
    if (result.violations.length > 0) {
      failures.push(`seed ${seed} (${result.config}):\n    ${result.violations.slice(0, 4).join('\n    ')}\n    replay: node dist/src/testing/sim-main.js --seeds 1 --seed ${seed} --ops ${OPS_PER_CYCLE} --cycles ${CRASH_CYCLES} --origin-mib-max ${ORIGIN_MIB_MAX}`);
      if (failures.length >= 3) break;
    }
  }
  assert.deepEqual(failures, [], failures.join('\n'));
  assert.ok(cycles >= SEEDS * CRASH_CYCLES);
});

/** Seeds run with the RAM tier always on (the seeds above run it on about half of them). */
const RAM_SEEDS = Number(process.env['CRASH_SIM_RAM_SEEDS'] ?? 150);
const RAM_FIRST_SEED = 100_001;

test(`crash simulator, RAM tier on: ${RAM_SEEDS} seeds in writeback and writethrough, no durability violation`, { timeout: 300_000 }, async () => {
  const failures: string[] = [];
  const modes = new Map<string, number>();
  for (let seed = RAM_FIRST_SEED; seed < RAM_FIRST_SEED + RAM_SEEDS; seed++) {
    const result = await runSimulation({ seed, opsPerCycle: OPS_PER_CYCLE, crashCycles: CRASH_CYCLES, originMiBMax: ORIGIN_MIB_MAX, ram: 'on' });
    const mode = /mode=(\w+)/.exec(result.config)![1]!;
    modes.set(mode, (modes.get(mode) ?? 0) + 1);
    assert.match(result.config, /ram=[1-9]/);
    if (result.violations.length > 0) {
      failures.push(`seed ${seed} (${result.config}):\n    ${result.violations.slice(0, 4).join('\n    ')}\n    replay: node dist/src/testing/sim-main.js --seeds 1 --seed ${seed} --ops ${OPS_PER_CYCLE} --cycles ${CRASH_CYCLES} --origin-mib-max ${ORIGIN_MIB_MAX} --ram on`);
      if (failures.length >= 3) break;
    }
  }
  assert.deepEqual(failures, [], failures.join('\n'));
  assert.ok((modes.get('writeback') ?? 0) > RAM_SEEDS / 4 && (modes.get('writethrough') ?? 0) > RAM_SEEDS / 10, JSON.stringify([...modes]));
});

/**
 * Seeds that caught real engine bugs (docs/DURABILITY.md, "Bugs the simulator
 * found"), replayed with the options they were found with.
 */
const REGRESSION_SEEDS: ReadonlyArray<{ seed: number; opsPerCycle?: number; crashCycles?: number; bug: string }> = [
  { seed: 71, bug: 'origin flush skipped for an origin write in flight when a commit started' },
  { seed: 148, bug: 'origin flush skipped (write-zeroes on the origin)' },
  { seed: 179, bug: 'written-back data missing from the origin after writebackAll and close' },
  { seed: 5047, opsPerCycle: 400, crashCycles: 4, bug: 'read miss cached pre-zero data during WRITE_ZEROES' },
  { seed: 20300, bug: 'WRITE_ZEROES dropped a dirty block before the origin zeroes were durable' },
];

test('crash simulator: the seeds that found engine bugs stay clean', { timeout: 120_000 }, async () => {
  for (const { seed, opsPerCycle, crashCycles, bug } of REGRESSION_SEEDS) {
    const result = await runSimulation({ seed, opsPerCycle, crashCycles });
    assert.deepEqual(result.violations.slice(0, 4), [], `seed ${seed} (${bug})`);
  }
});
