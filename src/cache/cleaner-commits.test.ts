// Commits of background writeback: when the engine commits periodically, a
// threshold round leaves its clean records to that commit instead of committing
// (and flushing both devices) itself, and picks blocks whose dirty records are
// already durable so that it needs no commit first either. The slots it cleans
// become reusable only once a commit has recorded them clean; a set that runs
// out of room meanwhile commits at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../devices/memory-device.js';
import { createCache, openCache } from './open-cache.js';
import { DIRTY, DIRTY_ON_DISK, VALID } from './slot-table.js';
import type { CacheEngine } from './engine.js';

const BLOCK = 4096;
const LOCATION = { name: 'cleaner-commits-origin', deviceId: 9, inode: 9 };
/** Long enough that the periodic commit never fires during a test. */
const NEVER_MS = 600_000;

async function setUp(commitIntervalMs: number, dirtyThresholdPercent: number) {
  const cache = new MemoryDevice(8 * 1024 * 1024);
  const origin = new MemoryDevice(32 * 1024 * 1024);
  await createCache({ cache, origin, originLocation: LOCATION, mode: 'writeback', blockBytes: BLOCK, assoc: 'full' });
  const { engine } = await openCache({ cache, origin, originLocation: LOCATION, commitIntervalMs, settings: { dirtyThresholdPercent } });
  return engine;
}

function block(value: number): Buffer {
  return Buffer.alloc(BLOCK, value & 0xff);
}

async function settled(engine: CacheEngine): Promise<void> {
  for (let i = 0; i < 2000 && engine.cleaner.running; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(engine.cleaner.running, false, 'the cleaner settles');
}

function slotsWhere(engine: CacheEngine, predicate: (state: number) => boolean): number {
  let count = 0;
  for (let slot = 0; slot < engine.mapping.cacheBlocks; slot++) if (predicate(engine.table.state[slot]!)) count++;
  return count;
}

test('with periodic commits, threshold rounds of durable dirty blocks commit nothing themselves', async () => {
  const engine = await setUp(NEVER_MS, 100);
  try {
    const blocks = Math.floor(engine.mapping.cacheBlocks / 2);
    for (let b = 0; b < blocks; b++) await engine.write(block(b), b * 2 * BLOCK); // not contiguous: one run per block
    await engine.commit(); // every dirty record durable
    const commitsBefore = engine.stats.commits;
    engine.cleaner.settings.dirtyThresholdPercent = 10;
    engine.cleaner.applySettings();
    await settled(engine);
    const written = engine.stats.writebacks;
    assert.ok(written >= blocks - Math.floor(engine.mapping.cacheBlocks * 0.1), `wrote back ${written} blocks`);
    assert.ok(written > 4 * 64, 'several rounds ran');
    assert.equal(engine.stats.commits, commitsBefore, 'no round committed');
    // Cleaned in memory, still dirty on disk: not reusable yet.
    const waiting = slotsWhere(engine, (state) => (state & (VALID | DIRTY | DIRTY_ON_DISK)) === (VALID | DIRTY_ON_DISK));
    assert.equal(waiting, written);
    await engine.commit(); // what the periodic commit does
    assert.equal(slotsWhere(engine, (state) => (state & DIRTY_ON_DISK) !== 0 && (state & DIRTY) === 0), 0, 'reusable after the commit');
    for (let b = 0; b < blocks; b++) {
      const back = Buffer.alloc(BLOCK);
      await engine.read(back, b * 2 * BLOCK);
      assert.ok(back.equals(block(b)), `block ${b * 2}`);
    }
  } finally {
    await engine.close();
  }
});

test('a threshold round takes blocks whose dirty records are durable before those that would need a commit first', async () => {
  const engine = await setUp(NEVER_MS, 100);
  try {
    const count = Math.floor(engine.mapping.cacheBlocks / 4);
    const scratch = Buffer.alloc(BLOCK);
    // Low slots: clean copies (read misses), made dirty after the commit below, so their dirty records are not durable.
    for (let b = 0; b < count; b++) await engine.read(scratch, b * 2 * BLOCK);
    // High slots: dirty blocks whose records the commit makes durable.
    for (let b = 0; b < count; b++) await engine.write(block(b), (1000 + b * 2) * BLOCK);
    await engine.commit();
    for (let b = 0; b < count; b++) await engine.write(block(b), b * 2 * BLOCK);
    const commitsBefore = engine.stats.commits;
    const keep = engine.table.dirtyCount - Math.floor(count / 2);
    engine.cleaner.settings.dirtyThresholdPercent = Math.ceil((100 * keep) / engine.mapping.cacheBlocks);
    engine.cleaner.applySettings();
    await settled(engine);
    assert.ok(engine.stats.writebacks > 0);
    assert.equal(engine.stats.commits, commitsBefore, 'only durable dirty blocks were written back');
  } finally {
    await engine.close();
  }
});

test('without periodic commits every round commits its clean records', async () => {
  const engine = await setUp(0, 100);
  try {
    const blocks = Math.floor(engine.mapping.cacheBlocks / 2);
    for (let b = 0; b < blocks; b++) await engine.write(block(b), b * 2 * BLOCK);
    await engine.commit();
    const commitsBefore = engine.stats.commits;
    engine.cleaner.settings.dirtyThresholdPercent = 10;
    engine.cleaner.applySettings();
    await settled(engine);
    const rounds = Math.ceil(engine.stats.writebacks / 64);
    assert.ok(engine.stats.commits - commitsBefore >= rounds, `${engine.stats.commits - commitsBefore} commits for ${rounds} rounds`);
    assert.equal(slotsWhere(engine, (state) => (state & DIRTY_ON_DISK) !== 0 && (state & DIRTY) === 0), 0);
  } finally {
    await engine.close();
  }
});

test('a set with no room and only blocks awaiting their clean records commits at once, and the next write finds room', async () => {
  const engine = await setUp(NEVER_MS, 100);
  try {
    const cacheBlocks = engine.mapping.cacheBlocks;
    for (let b = 0; b < cacheBlocks; b++) await engine.write(block(b), b * BLOCK); // the whole (one-set) cache dirty
    await engine.commit();
    engine.cleaner.settings.dirtyThresholdPercent = 0;
    engine.cleaner.applySettings();
    await settled(engine);
    assert.equal(engine.table.dirtyCount, 0);
    assert.equal(slotsWhere(engine, (state) => (state & DIRTY_ON_DISK) !== 0), cacheBlocks, 'all clean in memory, none reusable');
    const commits = engine.stats.commits;
    const uncached = engine.stats.uncachedWrites;
    await engine.write(block(7), cacheBlocks * BLOCK); // a miss: no evictable slot
    assert.equal(engine.stats.uncachedWrites, uncached + 1, 'that write went around the cache');
    for (let i = 0; i < 200 && engine.stats.commits === commits; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.ok(engine.stats.commits > commits, 'no room made a commit');
    await engine.write(block(8), (cacheBlocks + 1) * BLOCK);
    assert.equal(engine.stats.uncachedWrites, uncached + 1, 'the next miss found a slot');
    const back = Buffer.alloc(BLOCK);
    await engine.read(back, cacheBlocks * BLOCK);
    assert.ok(back.equals(block(7)));
  } finally {
    await engine.close();
  }
});
