// A sequential write burst held dirty, then `blockcache flush`: no dirty block
// is left, the origin is exact, and the origin (measured by nbdkit's stats
// filter in front of it) received coalesced writes averaging at least 64 KiB.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createFileCache, serveCache, ServedCache } from '../support/blockcache.js';
import { makeTempDir } from '../support/temp-dir.js';
import { requireTools, runChecked } from '../support/process.js';
import { blockcacheChecked, startStatsOrigin, StatsOrigin, statusOf } from '../support/writeback.js';

const MiB = 1024 * 1024;
const BURST_BYTES = 24 * MiB;

test('flush writes a sequential burst back as large sorted writes and leaves the origin exact', async () => {
  await requireTools(['nbdkit', 'nbdcopy', 'qemu-img']);
  const directory = await makeTempDir();
  let origin: StatsOrigin | undefined;
  let served: ServedCache | undefined;
  try {
    origin = await startStatsOrigin('64M');
    const { cache } = await createFileCache(directory, { originSpec: origin.uri, cacheBytes: 48 * MiB, mode: 'writeback', assoc: '64' });
    served = await serveCache(cache, directory.path, ['--set', 'dirty-threshold=100']);
    const data = randomBytes(BURST_BYTES);
    const dataPath = directory.file('data.bin');
    fs.writeFileSync(dataPath, data);
    // --flush: the client's FLUSH pushes the RAM tier's dirty pages down to the cache device.
    await runChecked('nbdcopy', ['--flush', dataPath, served.uri], { timeoutMs: 60_000 });
    // Nearly all of it: a set that fills up gets room made by writeback.
    assert.ok((await statusOf(served.control)).dirtyBlocks >= 0.9 * (BURST_BYTES / 4096), 'the burst is held dirty');

    const flushed = await blockcacheChecked(['flush', '--control', served.control]);
    assert.match(flushed.stdout, /flushed: .* 0 dirty blocks now/);
    assert.match(flushed.stderr + flushed.stdout, /flushing|flushed/);
    assert.equal((await statusOf(served.control)).dirtyBlocks, 0, 'flush leaves no dirty block');
    await served.stop();
    served = undefined;

    const readBack = directory.file('origin.bin');
    await runChecked('nbdcopy', [origin.uri, readBack], { timeoutMs: 60_000 });
    const originData = fs.readFileSync(readBack);
    assert.ok(originData.subarray(0, BURST_BYTES).equals(data), 'the origin holds the burst exactly');
    assert.ok(originData.subarray(BURST_BYTES).every((byte) => byte === 0), 'nothing else was written');

    const stats = await origin.stopAndReadStats();
    origin = undefined;
    assert.ok(stats.writeBytes >= BURST_BYTES, `the origin received the burst (${stats.writeBytes} bytes)`);
    const averageBytes = stats.writeBytes / stats.writeOps;
    assert.ok(averageBytes >= 64 * 1024, `origin writes average ${averageBytes} bytes over ${stats.writeOps} writes (want >= 64 KiB)`);
  } finally {
    await served?.process.kill('SIGKILL');
    await origin?.target.stop();
    await directory.remove();
  }
});
