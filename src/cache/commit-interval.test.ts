// The periodic commit's interval is a runtime setting (commit-interval): a new
// interval re-arms the timer at once, so pending records are committed within
// the new interval and not within the old one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../devices/memory-device.js';
import { VirtualTime } from '../testing/virtual-time.js';
import { createCache, openCache } from './open-cache.js';
import { COMMIT_INTERVAL_MS_DEFAULT } from './engine.js';

const BLOCK = 4096;
const LOCATION = { name: 'commit-interval-origin', deviceId: 12, inode: 12 };
const LONG_MS = 600_000;
const SHORT_MS = 1000;

/** Turns of the event loop run by `settle`: the activity that keeps virtual time from jumping to the next timer. */
let turns = 0;

/** Lets a commit a timer started run to its end; virtual time moves only by `advance`. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) {
    turns++;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('commit-interval: a new interval re-arms the periodic commit', async () => {
  const cache = new MemoryDevice(4 * 1024 * 1024);
  const origin = new MemoryDevice(16 * 1024 * 1024);
  await createCache({ cache, origin, originLocation: LOCATION, mode: 'writeback', blockBytes: BLOCK, assoc: 'full' });
  const time = new VirtualTime(() => turns);
  const timers = time.scope();
  const { engine } = await openCache({ cache, origin, originLocation: LOCATION, time: timers, settings: { dirtyThresholdPercent: 100, dirtyMaxAgeMs: 0 } }); // no cleaning: it commits too
  try {
    assert.equal(engine.commitIntervalMs, COMMIT_INTERVAL_MS_DEFAULT);
    engine.setCommitInterval(LONG_MS);
    assert.equal(engine.commitIntervalMs, LONG_MS);
    await engine.write(Buffer.alloc(BLOCK, 7), 0);
    const before = engine.stats.commits;
    time.advance(COMMIT_INTERVAL_MS_DEFAULT * 2);
    await settle();
    assert.equal(engine.stats.commits, before, 'no commit within the old default interval');

    engine.setCommitInterval(SHORT_MS);
    time.advance(SHORT_MS - 1);
    await settle();
    assert.equal(engine.stats.commits, before, 'the new interval counts from when it was set');
    time.advance(1);
    await settle();
    assert.equal(engine.stats.commits, before + 1, 'committed once the new interval passed');

    engine.setCommitInterval(0);
    await engine.write(Buffer.alloc(BLOCK, 8), BLOCK);
    time.advance(LONG_MS * 2);
    await settle();
    assert.equal(engine.stats.commits, before + 1, '0 turns the periodic commit off');
  } finally {
    await engine.close();
    timers.drop();
  }
});
