// The RAM tier stays coherent under concurrency: four writers and four readers
// on nine NBD connections (libnbd, test/cache/scripts/coherence.py) plus a
// flusher. Writers write, zero and trim their own blocks (some with FUA);
// readers check every block they read is that block's own data at a version no
// older than the newest acknowledged when the read began. The RAM tier is small
// (evictions and the dirty bound are hit constantly) and the SSD tier smaller
// than the working set (SSD evictions too). Afterwards every block is exact,
// and still exact after a clean restart (dirty RAM pages reached the cache).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { blockcacheChecked, createFileCache, serveCache, ServedCache } from '../support/blockcache.js';
import { MemoryDevice } from '../../src/devices/memory-device.js';
import { createCache, openCache } from '../../src/cache/open-cache.js';
import { describeResult, requireTools, runCommand } from '../support/process.js';
import { makeTempDir } from '../support/temp-dir.js';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/cache/scripts/coherence.py');
const PYTHON = '/usr/bin/python3';
const MiB = 1024 * 1024;
/** 8 MiB of 4 KiB blocks exercised; the SSD tier holds about 6 MiB of data, the RAM tier 1 MiB. */
const BLOCKS = 2048;
const SECONDS = 6;

const cases = [
  { mode: 'writeback', ramCache: '1M', seed: 1 },
  { mode: 'writethrough', ramCache: '1M', seed: 2 },
  { mode: 'writearound', ramCache: '64M', seed: 3 },
] as const;

async function status(control: string): Promise<Record<string, number>> {
  return JSON.parse((await blockcacheChecked(['status', '--control', control, '--json'])).stdout);
}

for (const { mode, ramCache, seed } of cases) {
  test(`${mode}, RAM tier ${ramCache}: concurrent writers and readers on 9 connections never see stale or foreign data`, async () => {
    await requireTools(['nbdsh']);
    const directory = await makeTempDir();
    let served: ServedCache | undefined;
    try {
      const { cache } = await createFileCache(directory, { originBytes: 16 * MiB, cacheBytes: 7 * MiB, mode, assoc: '64' });
      served = await serveCache(cache, directory.path, ['--ram-cache', ramCache]);
      const state = directory.file('expected.json');
      const run = await runCommand(PYTHON, [SCRIPT, served.uri, String(BLOCKS), String(SECONDS), String(seed), '--state', state], { timeoutMs: 120_000 });
      assert.equal(run.code, 0, describeResult('coherence run', run));
      const report = JSON.parse(run.stdout.trim().split('\n').pop()!);
      assert.equal(report.violationCount, 0);
      assert.ok(report.writes > 500 && report.reads > 500, `too little traffic to mean anything: ${run.stdout}`);
      const counters = await status(served.control);
      assert.ok(counters['ramReadHits']! > 0, 'reads were answered from RAM');
      if (mode === 'writeback') assert.ok(counters['ramWriteAbsorbs']! > 0, 'writes completed in RAM');
      else assert.equal(counters['ramWriteAbsorbs'], 0, 'no write completes in RAM outside writeback');
      // The human status shows the tiers.
      const human = (await blockcacheChecked(['status', '--control', served.control])).stdout;
      assert.match(human, /^state\s+running/m);
      assert.match(human, new RegExp(`^mode\\s+${mode}, policy `, 'm'));
      assert.match(human, /^reads\s+\d+ requests; block hits \d+/m);
      assert.match(human, /^ram\s+[\d.]+ [KMG]iB: \d+ blocks, \d+ dirty; \d+ block reads answered from RAM/m);
      // A clean restart: dirty RAM pages were pushed down and committed.
      await served.stop();
      served = await serveCache(cache, directory.path, ['--ram-cache', ramCache]);
      const again = await runCommand(PYTHON, [SCRIPT, served.uri, String(BLOCKS), '0', String(seed), '--verify-only', state], { timeoutMs: 120_000 });
      assert.equal(again.code, 0, describeResult('verify after restart', again));
    } finally {
      await served?.stop().catch(() => {});
      await directory.remove();
    }
  });
}

test('block status reports a block whose only new copy is a dirty RAM page as data, not a hole', async () => {
  // Only the memory device reports holes today (file and NBD origins report data everywhere).
  const origin = new MemoryDevice(16 * MiB);
  const cache = new MemoryDevice(4 * MiB);
  const originLocation = { name: 'memory-origin', deviceId: 0, inode: 0 };
  await createCache({ cache, origin, originLocation, mode: 'writeback' });
  const { engine } = await openCache({ cache, origin, originLocation, commitIntervalMs: 0, ramBytes: MiB });
  try {
    assert.ok(engine.writeNow(Buffer.alloc(4096, 'x'), MiB), 'the write completes in RAM');
    const [first] = await engine.blockStatus(MiB, 65536);
    assert.equal(first!.flags, 0, 'the dirty RAM block is data');
    const [untouched] = await engine.blockStatus(8 * MiB, 65536);
    assert.equal(untouched!.flags & 1, 1, 'an untouched region is still a hole');
  } finally {
    await engine.close();
  }
});
