// blockcache serve killed with SIGKILL under a heavy write load, and power loss
// of its (volatile-cache) devices together with it, in writeback and
// writethrough modes and with cache blocks larger than the client's writes.
import { test } from 'node:test';
import { runCrashScenario, verifierCatchesCorruption } from './crash-harness.js';

// The RAM tier is on in every scenario but one (serve's default 64M, or a small
// tier whose dirty bound and evictions are hit all the time).
const scenarios = [
  { mode: 'writeback', blockSize: '4K', powerLoss: false, cycles: 3, seed: 11, ramCache: '256K' },
  { mode: 'writeback', blockSize: '16K', powerLoss: false, cycles: 3, seed: 12 },
  { mode: 'writethrough', blockSize: '4K', powerLoss: false, cycles: 2, seed: 13 },
  { mode: 'writeback', blockSize: '16K', powerLoss: true, cycles: 3, seed: 14, ramCache: '1M' },
  { mode: 'writethrough', blockSize: '4K', powerLoss: true, cycles: 2, seed: 15 },
  { mode: 'writeback', blockSize: '4K', powerLoss: true, cycles: 2, seed: 16, ramCache: '0' },
] as const;

for (const scenario of scenarios) {
  const kind = scenario.powerLoss ? 'power loss of every device' : 'kill -9 of the server';
  const ram = 'ramCache' in scenario ? `RAM tier ${scenario.ramCache === '0' ? 'off' : scenario.ramCache}` : 'RAM tier 64M';
  test(`${scenario.mode} ${scenario.blockSize}, ${ram}: ${kind} under load, ${scenario.cycles} cycles, zero violations`, async (t) => {
    const result = await runCrashScenario(scenario);
    t.diagnostic(`${result.writes} client writes across ${result.cycles} crash cycles`);
  });
}

test('negative control: the verifier catches another unit\'s data and lost durable writes', async () => {
  await verifierCatchesCorruption();
});
