// Paced threshold cleaning inside the engine, on a fake clock: while client
// requests keep arriving, the cleaner writes back no more than the pace allows
// and reports the pace; once requests stop for CLIENTS_IDLE_AFTER_MS it cleans
// down to the threshold at full speed; dirty-pace 0 never paces. Real timers
// only let the cleaner's turns run; every rate is taken from the fake clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../devices/memory-device.js';
import { createCache, openCache } from './open-cache.js';
import { CLIENTS_IDLE_AFTER_MS, DIRTY_PACE_BYTES_PER_SECOND_MIN } from '../constants.js';
import { RATE_BURST_SECONDS } from './rate-limiter.js';
import type { CacheEngine } from './engine.js';
import { clockWithRealTimers } from '../stdx/timebase.js';

const BLOCK = 4096;
const LOCATION = { name: 'cleaner-pace-origin', deviceId: 11, inode: 11 };
const NEVER_MS = 600_000;
/** Blocks the paced cleaner may write back with the fake clock stopped: its burst, and the turn that starts it. */
const PACED_BURST_BLOCKS = Math.ceil((DIRTY_PACE_BYTES_PER_SECOND_MIN * RATE_BURST_SECONDS) / BLOCK) + 2;

async function setUp(dirtyPaceMs: number) {
  const clock = { now: 1_000_000 };
  const cache = new MemoryDevice(16 * 1024 * 1024);
  const origin = new MemoryDevice(64 * 1024 * 1024);
  await createCache({ cache, origin, originLocation: LOCATION, mode: 'writeback', blockBytes: BLOCK, assoc: 'full' });
  const { engine } = await openCache({
    cache, origin, originLocation: LOCATION, commitIntervalMs: NEVER_MS, settings: { dirtyThresholdPercent: 100, dirtyPaceMs }, time: clockWithRealTimers(() => clock.now),
  });
  // Half the cache dirty, single-block runs; every dirty record durable.
  const blocks = Math.floor(engine.mapping.cacheBlocks / 2);
  for (let b = 0; b < blocks; b++) await engine.write(Buffer.alloc(BLOCK, b & 0xff), b * 2 * BLOCK);
  await engine.commit();
  return { engine, clock, blocks };
}

const turns = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A client request: what makes the cleaner count clients as busy. */
async function clientRead(engine: CacheEngine): Promise<void> {
  await engine.read(Buffer.alloc(BLOCK), 0);
}

function thresholdTo(engine: CacheEngine, percent: number): number {
  engine.cleaner.settings.dirtyThresholdPercent = percent;
  engine.cleaner.applySettings();
  return Math.floor((engine.mapping.cacheBlocks * percent) / 100);
}

async function settled(engine: CacheEngine): Promise<void> {
  for (let i = 0; i < 4000 && engine.cleaner.running; i++) await turns(5);
  assert.equal(engine.cleaner.running, false, 'the cleaner settles');
}

test('while requests keep arriving, threshold cleaning is paced; once they stop it runs at full speed', async () => {
  const { engine, clock, blocks } = await setUp(60_000);
  try {
    await clientRead(engine);
    const threshold = thresholdTo(engine, 10);
    // Real time passes, the fake clock does not: the pace lets out only its first burst.
    for (let i = 0; i < 10; i++) {
      await clientRead(engine);
      await turns(20);
    }
    assert.ok(engine.stats.writebacks > 0, 'cleaning started');
    assert.ok(engine.stats.writebacks <= PACED_BURST_BLOCKS, `${engine.stats.writebacks} written back with the clock stopped`);
    assert.equal(engine.cleaner.paceRateBytesPerSecond, DIRTY_PACE_BYTES_PER_SECOND_MIN, 'the excess over 60 s is under the floor');
    // One second of busy clients: about one second's worth at the pace, no more.
    const before = engine.stats.writebacks;
    for (let step = 0; step < 10; step++) {
      clock.now += 100;
      await clientRead(engine);
      await turns(120);
    }
    const second = engine.stats.writebacks - before;
    assert.ok(second <= DIRTY_PACE_BYTES_PER_SECOND_MIN / BLOCK + PACED_BURST_BLOCKS, `${second} blocks in a paced second`);
    assert.ok(engine.table.dirtyCount > threshold);
    // Idle: no request for longer than CLIENTS_IDLE_AFTER_MS, and the clock stops again.
    clock.now += CLIENTS_IDLE_AFTER_MS + 1;
    await settled(engine);
    assert.ok(engine.table.dirtyCount <= threshold, `${engine.table.dirtyCount} dirty of threshold ${threshold}`);
    assert.ok(engine.stats.writebacks >= blocks - threshold);
    assert.equal(engine.cleaner.paceRateBytesPerSecond, 0);
  } finally {
    await engine.close();
  }
});

test('with a pace of 0, cleaning runs at full speed while requests keep arriving', async () => {
  const { engine, blocks } = await setUp(0);
  try {
    await clientRead(engine);
    const threshold = thresholdTo(engine, 10);
    for (let i = 0; i < 2000 && engine.cleaner.running; i++) {
      await clientRead(engine);
      assert.equal(engine.cleaner.paceRateBytesPerSecond, 0);
      await turns(5);
    }
    assert.equal(engine.cleaner.running, false, 'the cleaner settles while clients are busy');
    assert.ok(engine.table.dirtyCount <= threshold);
    assert.ok(engine.stats.writebacks >= blocks - threshold);
  } finally {
    await engine.close();
  }
});

test('above the ceiling (half-way to a full cache) cleaning is not paced, even with busy clients', async () => {
  const { engine } = await setUp(60_000);
  try {
    // A quarter of the cache more dirty (odd blocks); threshold 0 puts the ceiling at half the cache.
    const more = Math.floor(engine.mapping.cacheBlocks / 4);
    for (let b = 0; b < more; b++) await engine.write(Buffer.alloc(BLOCK, 7), (b * 2 + 1) * BLOCK);
    await engine.commit();
    await clientRead(engine);
    thresholdTo(engine, 0);
    const ceiling = Math.ceil(engine.mapping.cacheBlocks / 2);
    assert.ok(engine.table.dirtyCount > ceiling + 10 * PACED_BURST_BLOCKS);
    for (let i = 0; i < 2000 && engine.table.dirtyCount >= ceiling; i++) {
      await clientRead(engine);
      await turns(5);
    }
    assert.ok(engine.table.dirtyCount < ceiling, 'cleaned under the ceiling with the clock stopped');
    // Then paced: with the clock stopped, little more is written back.
    const under = engine.table.dirtyCount;
    for (let i = 0; i < 10; i++) {
      await clientRead(engine);
      await turns(20);
    }
    assert.ok(under - engine.table.dirtyCount <= PACED_BURST_BLOCKS, `${under - engine.table.dirtyCount} more written back`);
    assert.ok(engine.cleaner.paceRateBytesPerSecond > 0);
  } finally {
    await engine.close();
  }
});
