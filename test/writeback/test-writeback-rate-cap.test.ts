// The writeback-rate cap holds, measured at the origin (nbdkit's stats
// filter): with everything over the threshold, background cleaning writes no
// faster than the cap (generous bounds: no timing flakes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createFileCache, serveCache, ServedCache } from '../support/blockcache.js';
import { makeTempDir } from '../support/temp-dir.js';
import { requireTools, runChecked } from '../support/process.js';
import { setSettings, startStatsOrigin, StatsOrigin, statusOf } from '../support/writeback.js';

const MiB = 1024 * 1024;
const DIRTY_BYTES = 24 * MiB;
const RATE_BYTES_PER_SECOND = 1 * MiB;

test('background writeback stays under writeback-rate at the origin', async () => {
  await requireTools(['nbdkit', 'nbdcopy']);
  const directory = await makeTempDir();
  let origin: StatsOrigin | undefined;
  let served: ServedCache | undefined;
  try {
    origin = await startStatsOrigin('64M');
    const { cache } = await createFileCache(directory, { originSpec: origin.uri, cacheBytes: 48 * MiB, mode: 'writeback', assoc: 'full' });
    served = await serveCache(cache, directory.path, ['--set', 'dirty-threshold=100']);
    const dataPath = directory.file('data.bin');
    fs.writeFileSync(dataPath, randomBytes(DIRTY_BYTES));
    await runChecked('nbdcopy', [dataPath, served.uri], { timeoutMs: 60_000 });
    assert.equal((await statusOf(served.control)).writebacks, 0, 'nothing written back before the test starts');

    const settings = await setSettings(served.control, 'writeback-rate=1MiB/s', 'dirty-threshold=0');
    assert.equal(settings['writeback-rate'], '1M/s');
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const during = await statusOf(served.control);
    assert.ok(during.writebacks > 0, 'background cleaning runs');
    await served.stop(); // a clean stop keeps the remaining dirty blocks cached
    served = undefined;
    const elapsedSeconds = (performance.now() - started) / 1000;

    const stats = await origin.stopAndReadStats();
    origin = undefined;
    const allowedBytes = RATE_BYTES_PER_SECOND * elapsedSeconds * 1.5 + 1 * MiB;
    assert.ok(stats.writeBytes > 0, 'the origin received writeback');
    assert.ok(stats.writeBytes <= allowedBytes,
      `the origin received ${stats.writeBytes} bytes in ${elapsedSeconds.toFixed(1)} s (cap ${RATE_BYTES_PER_SECOND} B/s, allowed ${Math.round(allowedBytes)})`);
    assert.ok(stats.writeBytes < DIRTY_BYTES / 2, 'the cap, not the amount of dirty data, bounded the writeback');
  } finally {
    await served?.process.kill('SIGKILL');
    await origin?.target.stop();
    await directory.remove();
  }
});
