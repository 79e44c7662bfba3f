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
  { mode: 'writeback', ramCache: '64M', seed: 4 },
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
      // With every block in RAM, reads over 64 KiB are sent from the pages themselves.
      if (ramCache === '64M') assert.ok(counters['ramZeroCopyReads']! > 0, `large reads were sent zero-copy: ${JSON.stringify(counters)}`);
      if (mode === 'writeback') assert.ok(counters['ramWriteAbsorbs']! > 0, 'writes completed in RAM');
      else assert.equal(counters['ramWriteAbsorbs'], 0, 'no write completes in RAM outside writeback');
      // The human status shows the tiers.
      const human = (await blockcacheChecked(['status', '--control', served.control])).stdout;
      assert.match(human, /^state\s+running/m);
      assert.match(human, new RegExp(`^mode\\s+${mode}, policy `, 'm'));
      assert.match(human, /^reads\s+\d+ requests; block hits \d+/m);
      assert.match(human, /^ram\s+[\d.]+ [KMG]iB: \d+ blocks, \d+ dirty; \d+ block reads answered from RAM/m);
      assert.match(human, /^memory\s+metadata [\d.]+ [KMG]?i?B \([\d.]+ B per cache block\), process resident [\d.]+ [KMG]iB/m);
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

test('a write into RAM never leaves a partly written page when an earlier block of the same write takes that page', async () => {
  // Four RAM pages, all clean and resident. One write covers block 0 whole (not
  // resident: it needs a page, and a clean victim is taken) and the head of
  // block N (resident when the write starts). Whichever resident page is the
  // victim, the write must not end with a fresh page for a block it covers only
  // in part: its tail would be another block's bytes.
  const originLocation = { name: 'memory-origin', deviceId: 0, inode: 0 };
  for (const partial of [1, 2, 3, 4]) {
    const origin = new MemoryDevice(MiB);
    const initial = Buffer.alloc(MiB);
    for (let block = 0; block < 256; block++) initial.fill(block, block * 4096, (block + 1) * 4096);
    origin.writeSync(initial, 0);
    const cache = new MemoryDevice(4 * MiB);
    await createCache({ cache, origin, originLocation, mode: 'writeback', blockBytes: 4096 });
    const { engine } = await openCache({ cache, origin, originLocation, commitIntervalMs: 0, ramBytes: 4 * 4096 });
    try {
      for (const block of [1, 2, 3, 4]) await engine.read(Buffer.alloc(4096), block * 4096); // RAM: four clean pages
      // Block 0 whole, blocks 1..partial-1 whole, the first 100 bytes of block `partial`.
      const data = Buffer.alloc(partial * 4096 + 100, 0xee);
      if (!engine.writeNow(data, 0)) await engine.write(data, 0);
      const expected = Buffer.from(initial.subarray(0, (partial + 1) * 4096));
      data.copy(expected, 0);
      const got = Buffer.alloc(expected.length);
      if (!engine.readNow(got, 0)) await engine.read(got, 0);
      assert.ok(got.equals(expected), `write over blocks 0..${partial}: block ${Math.floor(firstDifference(got, expected) / 4096)} reads wrong bytes`);
    } finally {
      await engine.close();
    }
  }
});

function firstDifference(a: Buffer, b: Buffer): number {
  let at = 0;
  while (at < a.length && a[at] === b[at]) at++;
  return at;
}
