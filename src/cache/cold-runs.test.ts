// The engine's cold runs (lockColdRun): requests of several whole blocks none of
// which is cached, in RAM or locked.
// Reads (readRunOfMisses): served exactly, every block left a clean, valid copy
// with its checksum; an origin error fails the read and leaves no slot
// reserved; a cache write error serves the read anyway and caches nothing of
// that run; a write that arrives while the run reads the origin waits for it
// and is what every later read sees; a run with a cached block or a dirty RAM
// page takes the per-block path and is served exactly too; with the RAM tier on
// the run is not kept in RAM, and a second read (SSD-tier hits) puts it there.
// Writes in writeback (writeRunOfMisses): every block becomes a dirty copy,
// read back exactly and written to the origin by a flush of the cleaner; a
// cache write error fails the write and leaves no slot reserved; with the RAM
// tier on the run goes to the SSD tier; with no room for every block the write
// takes the per-block path, and nothing is lost either way.
// Both take their locks before returning, so overlapping requests issued back
// to back are applied in the order they arrived (as the per-block path does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../devices/memory-device.js';
import { TestDevice } from '../testing/test-device.js';
import { crc32c } from '../stdx/checksum.js';
import { createCache, openCache } from './open-cache.js';
import { DIRTY, HAS_CRC, RESERVED, VALID } from './slot-table.js';
import { CacheEngine } from './engine.js';

const BLOCK = 4096;
const LOCATION = { name: 'cold-runs-origin', deviceId: 13, inode: 13 };
const ORIGIN_BYTES = 4 * 1024 * 1024;

/** Slots reserved for a fill that has not completed. */
function reservedSlots(engine: CacheEngine): number {
  return engine.table.state.filter((state) => (state & RESERVED) !== 0).length;
}

function originImage(): Buffer {
  const image = Buffer.alloc(ORIGIN_BYTES);
  for (let at = 0; at < ORIGIN_BYTES; at += 4) image.writeUInt32LE((at * 2654435761) >>> 0, at);
  return image;
}

async function setUp(options: { ramBytes?: number; cacheBytes?: number } = {}) {
  const image = originImage();
  const originMemory = new MemoryDevice(ORIGIN_BYTES);
  await originMemory.write(image, 0);
  const origin = new TestDevice(originMemory);
  const cache = new TestDevice(new MemoryDevice(options.cacheBytes ?? 4 * 1024 * 1024));
  await createCache({ cache, origin, originLocation: LOCATION, mode: 'writeback', blockBytes: BLOCK });
  // No readahead: single-block reads here set up state; readahead has its own tests.
  const { engine } = await openCache({ cache, origin, originLocation: LOCATION, ramBytes: options.ramBytes ?? 0, commitIntervalMs: 0, readaheadBytes: 0 });
  return { engine, image, origin, cache };
}

/** The blocks [first, end) are clean valid copies whose recorded checksum is that of the origin's data. */
function assertCachedClean(engine: CacheEngine, image: Buffer, first: number, end: number): void {
  for (let block = first; block < end; block++) {
    const slot = engine.index.get(block);
    assert.ok(slot >= 0, `block ${block} is cached`);
    assert.ok(engine.table.has(slot, VALID) && engine.table.has(slot, HAS_CRC) && !engine.table.has(slot, DIRTY), `block ${block} is clean and valid`);
    assert.equal(engine.table.crcOf(slot), crc32c(image.subarray(block * BLOCK, (block + 1) * BLOCK)));
  }
}

test('a cold run of whole blocks is served exactly, in one origin read, and cached clean', async () => {
  const { engine, image, origin } = await setUp();
  try {
    const target = Buffer.alloc(16 * BLOCK);
    const readsBefore = origin.reads;
    await engine.read(target, 32 * BLOCK);
    assert.deepEqual(target, image.subarray(32 * BLOCK, 48 * BLOCK));
    assert.equal(origin.reads, readsBefore + 1, 'one origin read for the run');
    assert.equal(engine.stats.readMisses, 16);
    assertCachedClean(engine, image, 32, 48);
    // A second read is served by the cache.
    target.fill(0);
    await engine.read(target, 32 * BLOCK);
    assert.deepEqual(target, image.subarray(32 * BLOCK, 48 * BLOCK));
    assert.equal(origin.reads, readsBefore + 1);
    assert.equal(engine.stats.readHits, 16);
  } finally {
    await engine.close();
  }
});

test('an origin error fails the read and leaves no slot reserved; the next read fills the blocks', async () => {
  const { engine, image, origin } = await setUp();
  try {
    origin.failReads = true;
    await assert.rejects(engine.read(Buffer.alloc(8 * BLOCK), 8 * BLOCK), /injected read error/);
    assert.equal(reservedSlots(engine), 0, 'every reserved slot given back');
    assert.equal(engine.table.validCount, 0);
    for (let block = 8; block < 16; block++) assert.equal(engine.index.get(block), -1);
    assert.equal(engine.locks.lockedBlocks, 0);
    origin.failReads = false;
    const target = Buffer.alloc(8 * BLOCK);
    await engine.read(target, 8 * BLOCK);
    assert.deepEqual(target, image.subarray(8 * BLOCK, 16 * BLOCK));
    assertCachedClean(engine, image, 8, 16);
  } finally {
    await engine.close();
  }
});

test('a cache write error still serves the read, and caches nothing of the run', async () => {
  const { engine, image, cache } = await setUp();
  try {
    cache.failWrites = true;
    const target = Buffer.alloc(8 * BLOCK);
    await engine.read(target, 64 * BLOCK);
    cache.failWrites = false;
    assert.deepEqual(target, image.subarray(64 * BLOCK, 72 * BLOCK));
    for (let block = 64; block < 72; block++) assert.equal(engine.index.get(block), -1);
    assert.equal(reservedSlots(engine), 0);
    assert.equal(engine.table.validCount, 0);
    assert.ok(engine.stats.cacheWriteErrors > 0);
  } finally {
    await engine.close();
  }
});

test('a write that arrives while the run reads the origin waits for it, and is what later reads see', async () => {
  const { engine, image, origin } = await setUp();
  try {
    origin.hold('read');
    const target = Buffer.alloc(8 * BLOCK);
    const reading = engine.read(target, 16 * BLOCK);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(engine.locks.isBusy(19), true, 'the run holds its blocks while the origin is read');
    const data = Buffer.alloc(BLOCK, 0x5a);
    let written = false;
    const writing = engine.write(data, 19 * BLOCK).then(() => { written = true; });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(written, false, 'the write waits for the run');
    origin.release('read');
    await Promise.all([reading, writing]);
    assert.deepEqual(target, image.subarray(16 * BLOCK, 24 * BLOCK), 'the read started first: the origin data');
    const after = Buffer.alloc(8 * BLOCK);
    await engine.read(after, 16 * BLOCK);
    const expected = Buffer.from(image.subarray(16 * BLOCK, 24 * BLOCK));
    data.copy(expected, 3 * BLOCK);
    assert.deepEqual(after, expected);
    assert.ok(engine.table.has(engine.index.get(19), DIRTY));
  } finally {
    await engine.close();
  }
});

test('a run with a cached block, or a block newer in RAM, is served exactly by the per-block path', async () => {
  const { engine, image } = await setUp({ ramBytes: 64 * BLOCK });
  try {
    await engine.read(Buffer.alloc(BLOCK), 42 * BLOCK); // one block of the first run is cached
    const target = Buffer.alloc(8 * BLOCK);
    await engine.read(target, 40 * BLOCK);
    assert.deepEqual(target, image.subarray(40 * BLOCK, 48 * BLOCK));

    const data = Buffer.alloc(BLOCK, 0xa5);
    await engine.write(data, 53 * BLOCK); // a dirty RAM page (writeback completes into RAM)
    assert.equal(engine.index.get(53), -1, 'the write is in RAM only');
    await engine.read(target, 48 * BLOCK);
    const expected = Buffer.from(image.subarray(48 * BLOCK, 56 * BLOCK));
    data.copy(expected, 5 * BLOCK);
    assert.deepEqual(target, expected);
  } finally {
    await engine.close();
  }
});

/** A block of `value`s, distinct per block. */
function pattern(blocks: number, seed: number): Buffer {
  const data = Buffer.alloc(blocks * BLOCK);
  for (let at = 0; at < data.length; at += 4) data.writeUInt32LE((at * 40503 + seed * 2654435761) >>> 0, at);
  return data;
}

async function assertReadsBack(engine: CacheEngine, expected: Buffer, offsetBytes: number): Promise<void> {
  const target = Buffer.alloc(expected.length);
  await engine.read(target, offsetBytes);
  assert.deepEqual(target, expected);
}

test('a cold run written in writeback becomes dirty copies, reads back exactly, and reaches the origin on writeback', async () => {
  const { engine, origin } = await setUp();
  try {
    const data = pattern(16, 1);
    await engine.write(data, 96 * BLOCK);
    assert.equal(engine.stats.writeMisses, 16);
    for (let block = 96; block < 112; block++) {
      const slot = engine.index.get(block);
      assert.ok(slot >= 0 && engine.table.has(slot, VALID) && engine.table.has(slot, DIRTY), `block ${block} is a dirty copy`);
    }
    await assertReadsBack(engine, data, 96 * BLOCK);
    await engine.writebackAll();
    await engine.flush();
    const onOrigin = Buffer.alloc(data.length);
    await origin.read(onOrigin, 96 * BLOCK);
    assert.deepEqual(onOrigin, data);
  } finally {
    await engine.close();
  }
});

test('a cache write error fails a cold-run write and leaves no slot reserved; a retry succeeds', async () => {
  const { engine, cache } = await setUp();
  try {
    const data = pattern(8, 2);
    cache.failWrites = true;
    await assert.rejects(engine.write(data, 128 * BLOCK), /injected write error/);
    cache.failWrites = false;
    assert.equal(reservedSlots(engine), 0);
    assert.equal(engine.table.validCount, 0);
    assert.equal(engine.locks.lockedBlocks, 0);
    await engine.write(data, 128 * BLOCK);
    await assertReadsBack(engine, data, 128 * BLOCK);
  } finally {
    await engine.close();
  }
});

test('with the RAM tier on, a cold run read stays out of RAM until it is read again', async () => {
  const { engine, image } = await setUp({ ramBytes: 64 * BLOCK });
  try {
    const target = Buffer.alloc(8 * BLOCK);
    await engine.read(target, 200 * BLOCK);
    for (let block = 200; block < 208; block++) assert.equal(engine.ram!.lookup(block), -1, `block ${block} is not in RAM`);
    await engine.read(target, 200 * BLOCK); // hits on the SSD tier
    assert.deepEqual(target, image.subarray(200 * BLOCK, 208 * BLOCK));
    for (let block = 200; block < 208; block++) assert.ok(engine.ram!.lookup(block) >= 0, `block ${block} is in RAM`);
  } finally {
    await engine.close();
  }
});

test('with the RAM tier on, a cold run goes to the SSD tier; a one-block write still completes into RAM', async () => {
  const { engine } = await setUp({ ramBytes: 64 * BLOCK });
  try {
    const data = pattern(8, 3);
    await engine.write(data, 160 * BLOCK);
    for (let block = 160; block < 168; block++) assert.ok(engine.index.get(block) >= 0, `block ${block} is on the SSD tier`);
    assert.equal(engine.ramStats.writeAbsorbs, 0);
    await assertReadsBack(engine, data, 160 * BLOCK);
    await engine.write(pattern(1, 4), 170 * BLOCK);
    assert.equal(engine.ramStats.writeAbsorbs, 1);
  } finally {
    await engine.close();
  }
});

test('a cold-run write with no room for every block takes the per-block path and loses nothing', async () => {
  // A cache of one set: after 512 dirty blocks, no slot is evictable.
  const { engine, origin } = await setUp({ cacheBytes: 3 * 1024 * 1024 });
  try {
    const sets = engine.mapping.sets;
    const slots = engine.mapping.cacheBlocks;
    assert.ok(slots < 1024, `a small cache (${slots} blocks, ${sets} sets)`);
    const data = pattern(1024, 5);
    await engine.write(data, 0);
    await assertReadsBack(engine, data, 0);
    assert.ok(engine.stats.uncachedWrites > 0, 'some blocks went to the origin');
    await engine.writebackAll();
    await engine.flush();
    const onOrigin = Buffer.alloc(data.length);
    await origin.read(onOrigin, 0);
    assert.deepEqual(onOrigin, data);
  } finally {
    await engine.close();
  }
});

test('cold runs keep the arrival order of overlapping requests issued back to back', async () => {
  const { engine, image } = await setUp();
  try {
    // A cold-run write, then zeroes over it: the zeroes win.
    const written = engine.write(pattern(8, 6), 240 * BLOCK);
    const zeroed = engine.writeZeroes(240 * BLOCK, 8 * BLOCK);
    await Promise.all([written, zeroed]);
    await assertReadsBack(engine, Buffer.alloc(8 * BLOCK), 240 * BLOCK);
    // A cold-run write, then a read of it: the read sees the write.
    const fresh = pattern(8, 8);
    const writingRun = engine.write(fresh, 272 * BLOCK);
    const readBack = Buffer.alloc(8 * BLOCK);
    await Promise.all([writingRun, engine.read(readBack, 272 * BLOCK)]);
    assert.deepEqual(readBack, fresh);
    // A cold-run read, then a write into it: the read sees the data from before the write.
    const target = Buffer.alloc(8 * BLOCK);
    const reading = engine.read(target, 256 * BLOCK);
    const data = pattern(1, 7);
    const writing = engine.write(data, 259 * BLOCK);
    await Promise.all([reading, writing]);
    assert.deepEqual(target, image.subarray(256 * BLOCK, 264 * BLOCK));
    const expected = Buffer.from(image.subarray(256 * BLOCK, 264 * BLOCK));
    data.copy(expected, 3 * BLOCK);
    await assertReadsBack(engine, expected, 256 * BLOCK);
  } finally {
    await engine.close();
  }
});
