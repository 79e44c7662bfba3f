// The checker's own test: deliberately broken set-ups must be caught within a
// few seeds, or the simulator's silence about the real engine means nothing.
//   lying-flush         the cache device acknowledges flushes without persisting
//   lying-origin-flush  the origin device does the same
//   no-intent           the engine skips "origin writes uncommitted" before origin writes
//   ignore-fua          the engine acknowledges FUA writes without committing them
//   flush-noop          the engine acknowledges FLUSH without committing
//   ram-flush-no-push   FLUSH commits without pushing dirty RAM pages down (RAM tier on)
//   ram-keeps-stale     trims and zeroes leave the RAM copy in place (RAM tier on)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CANARIES, runSimulation } from '../../src/testing/crash-simulator.js';

/** Each canary must be caught within this many seeds (all are caught within 10 today). */
const SEEDS_MAX = 40;

for (const canary of CANARIES) {
  test(`crash simulator catches the ${canary} canary within ${SEEDS_MAX} seeds`, { timeout: 300_000 }, async () => {
    let caughtAt: number | undefined;
    for (let seed = 1; seed <= SEEDS_MAX && caughtAt === undefined; seed++) {
      const result = await runSimulation({ seed, canary });
      if (result.violations.length > 0) caughtAt = seed;
    }
    assert.ok(caughtAt !== undefined, `${canary} was not caught in ${SEEDS_MAX} seeds`);
  });
}
