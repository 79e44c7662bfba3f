// The engine's synchronous SSD-tier hit (readNow → readSsdHitNow) over a real
// cache file read inline: a hit within one block is served at once with exact
// data and counted; a miss, a locked block, a read over two blocks, a cache
// device without inline reads, and (with the RAM tier on) a partial block are
// left to read(). A whole block read this way is kept in RAM.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FILE_ENGINE_BLOCK_BYTES, openFileEngine } from '../testing/file-engine.js';

const BLOCK = FILE_ENGINE_BLOCK_BYTES;
const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'blockcache-ssd-read-now-'));
after(() => fs.rmSync(directory, { recursive: true, force: true }));

test('a hit within one block on the SSD tier is read at once, exactly; other reads are left to read()', async () => {
  const { engine, image } = await openFileEngine(directory, 'plain', { inlineIo: true, ramBytes: 0 });
  try {
    const target = Buffer.alloc(BLOCK);
    assert.equal(engine.readNow(target, 5 * BLOCK), false, 'a miss');
    await engine.read(target, 5 * BLOCK); // fills the slot
    await engine.read(Buffer.alloc(BLOCK), 6 * BLOCK);
    const before = { reads: engine.stats.reads, hits: engine.stats.readHits };
    target.fill(0);
    assert.equal(engine.readNow(target, 5 * BLOCK), true, 'a hit');
    assert.deepEqual(target, image.subarray(5 * BLOCK, 6 * BLOCK));
    const part = Buffer.alloc(1000);
    assert.equal(engine.readNow(part, 5 * BLOCK + 512), true, 'part of a hit');
    assert.deepEqual(part, image.subarray(5 * BLOCK + 512, 5 * BLOCK + 1512));
    assert.deepEqual({ reads: engine.stats.reads, hits: engine.stats.readHits }, { reads: before.reads + 2, hits: before.hits + 2 });
    assert.equal(engine.readNow(Buffer.alloc(2 * BLOCK), 5 * BLOCK), false, 'two blocks, even both cached');
    // A block someone holds (a write changing it) is not read now.
    const wait = engine.locks.acquire(5, true);
    assert.equal(wait, undefined);
    assert.equal(engine.readNow(target, 5 * BLOCK), false, 'locked');
    engine.locks.release(5, true);
    assert.equal(engine.readNow(target, 5 * BLOCK), true);
    // A write through the engine is what a later read-now sees.
    const data = Buffer.alloc(BLOCK, 0x5a);
    await engine.write(data, 5 * BLOCK);
    assert.equal(engine.readNow(target, 5 * BLOCK), true);
    assert.deepEqual(target, data);
  } finally {
    await engine.close();
  }
});

test('a cache device that does not read inline leaves every SSD-tier hit to read()', async () => {
  const { engine } = await openFileEngine(directory, 'pool', { inlineIo: false, ramBytes: 0 });
  try {
    await engine.read(Buffer.alloc(BLOCK), 5 * BLOCK);
    assert.equal(engine.readNow(Buffer.alloc(BLOCK), 5 * BLOCK), false);
  } finally {
    await engine.close();
  }
});

test('with the RAM tier on, a whole block read now from the SSD tier is kept in RAM; a partial one is left to read()', async () => {
  const { engine, image } = await openFileEngine(directory, 'ram', { inlineIo: true, ramBytes: 64 * BLOCK });
  try {
    await engine.read(Buffer.alloc(BLOCK), 7 * BLOCK);
    await engine.setRamBytes(0); // start the RAM tier empty: the block is on the SSD tier only
    await engine.setRamBytes(64 * BLOCK);
    assert.equal(engine.readNow(Buffer.alloc(100), 7 * BLOCK), false, 'partial: read() reads it whole for RAM');
    const ramHits = engine.ramStats.readHits;
    const target = Buffer.alloc(BLOCK);
    assert.equal(engine.readNow(target, 7 * BLOCK), true);
    assert.deepEqual(target, image.subarray(7 * BLOCK, 8 * BLOCK));
    assert.equal(engine.ramStats.readHits, ramHits, 'served by the SSD tier');
    assert.equal(engine.readNow(target, 7 * BLOCK), true);
    assert.equal(engine.ramStats.readHits, ramHits + 1, 'then by RAM');
  } finally {
    await engine.close();
  }
});
