// A writeback round sorts its dirty blocks into runs of consecutive origin
// blocks, then writes the runs one after another; a background round waits for
// its rate limit between them. A run's slots may change hands meanwhile: here
// block 83 is trimmed (its slot freed at the next commit) and block 90 is
// written into that slot and committed before the run [82, 83] is written. The
// run must not then write block 90's data at block 83's place and call block
// 90 clean: that lost an acknowledged write once the clean slot was evicted
// (test-ram-coherence, writeback: a block read an older version).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../devices/memory-device.js';
import { createCache, openCache } from './open-cache.js';
import { clockWithRealTimers } from '../stdx/timebase.js';

const BLOCK = 4096;
const LOCATION = { name: 'cleaner-stale-runs-origin', deviceId: 11, inode: 11 };

function content(block: number): Buffer {
  const data = Buffer.alloc(BLOCK);
  for (let at = 0; at < BLOCK; at += 4) data.writeUInt32LE(block, at);
  return data;
}

async function until(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  assert.ok(condition(), what);
}

test('a writeback run whose slot was given to another block meanwhile never writes that block at the old place', async () => {
  const cache = new MemoryDevice(2 * 1024 * 1024);
  const origin = new MemoryDevice(4 * 1024 * 1024);
  await createCache({ cache, origin, originLocation: LOCATION, mode: 'writeback', blockBytes: BLOCK, assoc: 'full' });
  // A frozen clock: once the first run has taken the one write a second allows, the next waits until woken.
  const { engine } = await openCache({
    cache, origin, originLocation: LOCATION, commitIntervalMs: 0, readaheadBytes: 0, time: clockWithRealTimers(() => 0),
    settings: { dirtyThresholdPercent: 100, writebackRateIops: 1, dirtyMaxAgeMs: 0, dirtyPaceMs: 0 },
  });
  try {
    for (const block of [10, 82, 83]) await engine.write(content(block), block * BLOCK);
    await engine.commit();
    const slot83 = engine.index.get(83);
    engine.cleaner.settings.dirtyThresholdPercent = 0;
    engine.cleaner.applySettings(); // a background round of runs [10], [82, 83]
    await until('the first run is written back', () => engine.stats.writebacks === 1);
    // While the round waits for its rate limit: block 83's slot goes to block 90.
    await engine.trim(83 * BLOCK, BLOCK);
    await engine.commit();
    await engine.write(content(90), 90 * BLOCK);
    await engine.commit();
    assert.equal(engine.index.get(90), slot83, 'block 90 took the slot block 83 had (the case under test)');
    engine.cleaner.settings.writebackRateIops = 0;
    engine.cleaner.applySettings(); // wakes the round, unlimited from now on
    await until('every dirty block is written back', () => !engine.cleaner.running && engine.table.dirtyCount === 0);
    const at83 = Buffer.alloc(BLOCK);
    await origin.read(at83, 83 * BLOCK);
    assert.ok(!at83.equals(content(90)), 'block 90\'s data was written at block 83');
    await engine.writebackAll();
    for (const block of [10, 82, 90]) {
      const got = Buffer.alloc(BLOCK);
      await origin.read(got, block * BLOCK);
      assert.ok(got.equals(content(block)), `the origin holds block ${block}'s data after writeback`);
    }
  } finally {
    await engine.close();
  }
});
