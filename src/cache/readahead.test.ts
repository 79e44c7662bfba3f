// Readahead (CacheEngine.readAhead): a read miss also fetches the cold blocks
// around it within the aligned window, in one origin read, into free slots
// only; the read is exact, the neighbours are cached clean with their
// checksums and later reads of them are hits. The extension stops at a cached,
// locked or RAM-resident block and at a full set (never evicting); a failed wider
// read is retried alone; readahead 0 fetches nothing more; a cold read of several
// blocks up to the window reads ahead too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../devices/memory-device.js';
import { TestDevice } from '../testing/test-device.js';
import { crc32c } from '../stdx/checksum.js';
import { createCache, openCache } from './open-cache.js';
import { DIRTY, HAS_CRC, RESERVED, VALID } from './slot-table.js';
import { CacheEngine } from './engine.js';

const BLOCK = 4096;
const WINDOW_BLOCKS = 16;
const LOCATION = { name: 'readahead-origin', deviceId: 14, inode: 14 };
const ORIGIN_BYTES = 4 * 1024 * 1024;

async function setUp(options: { ramBytes?: number; assoc?: number | 'full'; cacheBytes?: number } = {}) {
  const image = Buffer.alloc(ORIGIN_BYTES);
  for (let at = 0; at < ORIGIN_BYTES; at += 4) image.writeUInt32LE((at * 2654435761) >>> 0, at);
  const memory = new MemoryDevice(ORIGIN_BYTES);
  await memory.write(image, 0);
  const origin = new TestDevice(memory);
  const cache = new MemoryDevice(options.cacheBytes ?? 4 * 1024 * 1024);
  await createCache({ cache, origin, originLocation: LOCATION, mode: 'writeback', blockBytes: BLOCK, assoc: options.assoc });
  const { engine } = await openCache({ cache, origin, originLocation: LOCATION, ramBytes: options.ramBytes ?? 0, commitIntervalMs: 0 });
  engine.setReadahead(WINDOW_BLOCKS * BLOCK);
  return { engine, image, origin };
}

function cachedClean(engine: CacheEngine, image: Buffer, block: number): boolean {
  const slot = engine.index.get(block);
  return slot >= 0 && engine.table.has(slot, VALID) && engine.table.has(slot, HAS_CRC) && !engine.table.has(slot, DIRTY)
    && engine.table.crcOf(slot) === crc32c(image.subarray(block * BLOCK, (block + 1) * BLOCK));
}

function reservedSlots(engine: CacheEngine): number {
  return engine.table.state.filter((state) => (state & RESERVED) !== 0).length;
}

test('a read miss fetches its cold window in one origin read; the neighbours are cached clean and then hit', async () => {
  const { engine, image, origin } = await setUp();
  try {
    const target = Buffer.alloc(1000);
    const reads = origin.reads;
    await engine.read(target, 21 * BLOCK + 100); // block 21: window 16..31
    assert.deepEqual(target, image.subarray(21 * BLOCK + 100, 21 * BLOCK + 1100));
    assert.equal(origin.reads, reads + 1, 'one origin read');
    assert.equal(engine.stats.readMisses, 1);
    assert.equal(engine.stats.readaheadBlocks, WINDOW_BLOCKS - 1);
    for (let block = 16; block < 32; block++) assert.ok(cachedClean(engine, image, block), `block ${block} cached clean`);
    assert.equal(engine.index.get(15), -1, 'nothing outside the window');
    assert.equal(engine.index.get(32), -1);
    const whole = Buffer.alloc(16 * BLOCK);
    await engine.read(whole, 16 * BLOCK);
    assert.deepEqual(whole, image.subarray(16 * BLOCK, 32 * BLOCK));
    assert.equal(origin.reads, reads + 1, 'the window is served by the cache');
  } finally {
    await engine.close();
  }
});

test('the extension stops at a cached block, a locked block and a block in RAM', async () => {
  const { engine, image } = await setUp({ ramBytes: 64 * BLOCK });
  try {
    engine.setReadahead(0);
    await engine.read(Buffer.alloc(BLOCK), 36 * BLOCK); // cached
    engine.setReadahead(WINDOW_BLOCKS * BLOCK);
    const dirty = Buffer.alloc(BLOCK, 0x3c);
    await engine.write(dirty, 42 * BLOCK); // a dirty RAM page only
    assert.equal(engine.index.get(42), -1);
    assert.equal(engine.locks.acquire(44, true), undefined); // held by someone else
    const target = Buffer.alloc(BLOCK);
    await engine.read(target, 40 * BLOCK); // window 32..47
    assert.deepEqual(target, image.subarray(40 * BLOCK, 41 * BLOCK));
    for (const block of [37, 38, 39, 40, 41]) assert.ok(cachedClean(engine, image, block), `block ${block} fetched`);
    for (const block of [32, 33, 34, 35, 43, 44, 45]) assert.equal(engine.index.get(block), -1, `block ${block} not fetched`);
    engine.locks.release(44, true);
    await engine.read(target, 42 * BLOCK);
    assert.deepEqual(target, dirty, 'the RAM page is still the block');
  } finally {
    await engine.close();
  }
});

test('readahead never evicts: with a full set it fetches only the requested block', async () => {
  // One set (fully associative) of the cache's blocks; fill it, then miss.
  const { engine, origin } = await setUp({ assoc: 'full', cacheBytes: 3 * 1024 * 1024 });
  try {
    const slots = engine.mapping.cacheBlocks;
    const base = 1024 - Math.ceil(slots / 8) * 8; // the last blocks of the origin
    assert.ok(base > 16, `a small cache (${slots} blocks)`);
    engine.setReadahead(0);
    for (let block = 0; block < slots; block += 8) await engine.read(Buffer.alloc(8 * BLOCK), (base + block) * BLOCK);
    engine.setReadahead(WINDOW_BLOCKS * BLOCK);
    assert.equal(engine.table.validCount, slots, 'the cache is full');
    const evictions = engine.stats.evictions;
    const reads = origin.reads;
    await engine.read(Buffer.alloc(BLOCK), 3 * BLOCK);
    assert.equal(engine.stats.readaheadBlocks, 0);
    assert.equal(origin.reads, reads + 1);
    assert.ok(engine.stats.evictions <= evictions + 1, 'at most the requested block replaced a victim');
  } finally {
    await engine.close();
  }
});

test('a failed wider read is retried alone, and leaves no slot reserved', async () => {
  const { engine, image, origin } = await setUp();
  try {
    origin.failReadsLongerThan = BLOCK;
    const target = Buffer.alloc(BLOCK);
    await engine.read(target, 70 * BLOCK);
    origin.failReadsLongerThan = Number.POSITIVE_INFINITY; // close reads the origin's fingerprint
    assert.deepEqual(target, image.subarray(70 * BLOCK, 71 * BLOCK));
    assert.equal(engine.stats.readaheadFailures, 1);
    assert.equal(reservedSlots(engine), 0);
    assert.ok(cachedClean(engine, image, 70), 'the requested block is cached by the retry');
    assert.equal(engine.index.get(71), -1, 'no neighbour');
    assert.equal(engine.locks.lockedBlocks, 0);
  } finally {
    await engine.close();
  }
});

test('readahead 0 fetches nothing more', async () => {
  const { engine } = await setUp();
  try {
    engine.setReadahead(0);
    await engine.read(Buffer.alloc(BLOCK), 90 * BLOCK);
    assert.equal(engine.stats.readaheadBlocks, 0);
    assert.equal(engine.index.get(91), -1);
  } finally {
    await engine.close();
  }
});

test('a cold read of several blocks up to the window reads ahead too', async () => {
  const { engine, image, origin } = await setUp();
  try {
    const target = Buffer.alloc(3 * BLOCK);
    const reads = origin.reads;
    await engine.read(target, 100 * BLOCK); // blocks 100..102: window 96..111
    assert.deepEqual(target, image.subarray(100 * BLOCK, 103 * BLOCK));
    assert.equal(origin.reads, reads + 1, 'one origin read');
    assert.equal(engine.stats.readMisses, 3);
    assert.equal(engine.stats.readaheadBlocks, WINDOW_BLOCKS - 3);
    for (let block = 96; block < 112; block++) assert.ok(cachedClean(engine, image, block), `block ${block} cached clean`);
  } finally {
    await engine.close();
  }
});
