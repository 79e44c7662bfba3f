// blockcache serve killed with SIGKILL under a heavy write load, and power loss
// of its (volatile-cache) devices together with it, in writeback and
// writethrough modes and with cache blocks larger than the client's writes.
import { test } from 'node:test';
import { runCrashScenario, verifierCatchesCorruption } from './crash-harness.js';

const scenarios = [
  { mode: 'writeback', blockSize: '4K', powerLoss: false, cycles: 3, seed: 11 },
  { mode: 'writeback', blockSize: '16K', powerLoss: false, cycles: 3, seed: 12 },
  { mode: 'writethrough', blockSize: '4K', powerLoss: false, cycles: 2, seed: 13 },
  { mode: 'writeback', blockSize: '16K', powerLoss: true, cycles: 3, seed: 14 },
  { mode: 'writethrough', blockSize: '4K', powerLoss: true, cycles: 2, seed: 15 },
] as const;

for (const scenario of scenarios) {
  const kind = scenario.powerLoss ? 'power loss of every device' : 'kill -9 of the server';
  test(`${scenario.mode} ${scenario.blockSize}: ${kind} under load, ${scenario.cycles} cycles, zero violations`, async (t) => {
    const result = await runCrashScenario(scenario);
    t.diagnostic(`${result.writes} client writes across ${result.cycles} crash cycles`);
  });
}

test('negative control: the verifier catches another unit\'s data and lost durable writes', async () => {
  await verifierCatchesCorruption();
});
