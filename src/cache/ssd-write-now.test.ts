// The engine's synchronous SSD-tier write hit (writeNow → writeSsdHitNow, RAM tier
// off) over a real cache file written inline: a writeback write over cached blocks
// in consecutive slots (one block, or up to SSD_WRITE_NOW_BYTES_MAX) completes at
// once, is counted, dirty, reads back and reaches the origin. Left to write(): a
// miss, a locked block, blocks in slots that are not consecutive, a larger write,
// FUA, writethrough, a cache device without inline writes, a clean block a
// sequential stream would take around the cache, and a device error (write()
// redoes the whole write).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FILE_ENGINE_BLOCK_BYTES, openFileEngine } from '../testing/file-engine.js';
import { SSD_WRITE_NOW_BYTES_MAX } from '../constants.js';

const BLOCK = FILE_ENGINE_BLOCK_BYTES;
const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'blockcache-ssd-write-now-'));
after(() => fs.rmSync(directory, { recursive: true, force: true }));

test('a writeback write within one cached block completes at once: counted, dirty, read back, on the origin after writeback', async () => {
  const { engine, image, origin } = await openFileEngine(directory, 'plain', { inlineIo: true, ramBytes: 0, readaheadBytes: 0 });
  try {
    const whole = Buffer.alloc(BLOCK, 0x5a);
    assert.equal(engine.writeNow(whole, 5 * BLOCK), false, 'a miss');
    await engine.read(Buffer.alloc(BLOCK), 5 * BLOCK); // cached clean
    const before = { writes: engine.stats.writes, hits: engine.stats.writeHits, dirty: engine.table.dirtyCount };
    assert.equal(engine.writeNow(whole, 5 * BLOCK), true, 'a whole-block hit');
    const part = Buffer.alloc(1000, 0x33);
    assert.equal(engine.writeNow(part, 5 * BLOCK + 512), true, 'part of a hit');
    assert.deepEqual(
      { writes: engine.stats.writes, hits: engine.stats.writeHits, dirty: engine.table.dirtyCount },
      { writes: before.writes + 2, hits: before.hits + 2, dirty: before.dirty + 1 });
    const expected = Buffer.from(whole);
    part.copy(expected, 512);
    const back = Buffer.alloc(BLOCK);
    await engine.read(back, 5 * BLOCK);
    assert.deepEqual(back, expected);
    await engine.read(Buffer.alloc(BLOCK), 6 * BLOCK);
    assert.equal(engine.writeNow(whole, 6 * BLOCK, { fua: true }), false, 'FUA');
    const wait = engine.locks.acquire(6, false);
    assert.equal(wait, undefined);
    assert.equal(engine.writeNow(whole, 6 * BLOCK), false, 'a block someone holds');
    engine.locks.release(6, false);
    assert.equal(engine.locks.lockedBlocks, 0);
    await engine.flush();
    await engine.writebackAll();
    const stored = Buffer.alloc(BLOCK);
    await origin.read(stored, 5 * BLOCK);
    assert.deepEqual(stored, expected, 'the origin has the write');
    await origin.read(stored, 6 * BLOCK);
    assert.deepEqual(stored, image.subarray(6 * BLOCK, 7 * BLOCK), 'declined writes changed nothing');
  } finally {
    await engine.close();
  }
});

test('a clean block a sequential stream would take around the cache is left to write(); a dirty one is written now', async () => {
  const { engine } = await openFileEngine(directory, 'stream', { inlineIo: true, ramBytes: 0, readaheadBytes: 0 });
  try {
    await engine.read(Buffer.alloc(8 * BLOCK), 0); // blocks 0-7 cached clean
    engine.setSequentialCutoff(4 * BLOCK);
    for (let block = 0; block < 3; block++) assert.equal(engine.writeNow(Buffer.alloc(BLOCK, 1), block * BLOCK), true, `block ${block}: under the cutoff`);
    assert.equal(engine.writeNow(Buffer.alloc(BLOCK, 1), 3 * BLOCK), false, 'the stream reaches the cutoff over a clean block');
    const bypassed = engine.stats.sequentialBypassWrites;
    await engine.write(Buffer.alloc(BLOCK, 1), 3 * BLOCK);
    assert.equal(engine.stats.sequentialBypassWrites, bypassed + 1, 'write() observed the request once and took it around the cache');
    assert.equal(engine.writeNow(Buffer.alloc(BLOCK, 2), 1 * BLOCK), true, 'a dirty block in a long stream is rewritten in the cache');
  } finally {
    await engine.close();
  }
});

test('writethrough, a cache device without inline writes, and a failed inline write are left to write()', async () => {
  for (const [name, inlineIo, mode] of [['writethrough', true, 'writethrough'], ['pool', false, 'writeback']] as const) {
    const { engine } = await openFileEngine(directory, name, { inlineIo, mode, ramBytes: 0, readaheadBytes: 0 });
    try {
      await engine.read(Buffer.alloc(BLOCK), 5 * BLOCK);
      assert.equal(engine.writeNow(Buffer.alloc(BLOCK, 7), 5 * BLOCK), false, name);
    } finally {
      await engine.close();
    }
  }
  const { engine, cache } = await openFileEngine(directory, 'failing', { inlineIo: true, ramBytes: 0, readaheadBytes: 0 });
  try {
    await engine.read(Buffer.alloc(BLOCK), 5 * BLOCK);
    const writes = engine.stats.writes;
    cache.writeNow = () => { throw new Error('injected: inline write failed'); };
    assert.equal(engine.writeNow(Buffer.alloc(BLOCK, 7), 5 * BLOCK), false, 'declined');
    assert.equal(engine.stats.writes, writes, 'not counted');
    assert.equal(engine.table.dirtyCount, 0, 'not marked');
    await engine.write(Buffer.alloc(BLOCK, 7), 5 * BLOCK); // the ordinary path redoes it
    assert.equal(engine.table.dirtyCount, 1);
    const back = Buffer.alloc(BLOCK);
    await engine.read(back, 5 * BLOCK);
    assert.deepEqual(back, Buffer.alloc(BLOCK, 7));
  } finally {
    await engine.close();
  }
});

test('a write over several cached blocks in consecutive slots completes at once as one write; other slots or a larger write are left to write()', async () => {
  const { engine, origin } = await openFileEngine(directory, 'several', { inlineIo: true, ramBytes: 0, readaheadBytes: 0 });
  try {
    // A cold run: blocks 16-23 in consecutive slots. Blocks 40, 42, 41 read in that order: 41 and 42 swap places.
    await engine.read(Buffer.alloc(8 * BLOCK), 16 * BLOCK);
    for (const block of [40, 42, 41]) await engine.read(Buffer.alloc(BLOCK), block * BLOCK);
    const hits = engine.stats.writeHits;
    const span = Buffer.alloc(3 * BLOCK, 0x6c); // blocks 16-19, partial at both ends
    assert.equal(engine.writeNow(span, 16 * BLOCK + 100), true, 'consecutive slots, partial ends');
    assert.equal(engine.stats.writeHits, hits + 4, 'each block counted');
    assert.equal(engine.table.dirtyCount, 4, 'each block dirty');
    assert.equal(engine.writeNow(Buffer.alloc(2 * BLOCK, 1), 40 * BLOCK), false, 'blocks 40 and 41 are not in consecutive slots');
    assert.equal(engine.writeNow(Buffer.alloc(SSD_WRITE_NOW_BYTES_MAX + BLOCK, 1), 16 * BLOCK), false, 'over SSD_WRITE_NOW_BYTES_MAX');
    const wait = engine.locks.acquire(19, false);
    assert.equal(wait, undefined);
    assert.equal(engine.writeNow(Buffer.alloc(2 * BLOCK, 1), 18 * BLOCK), false, 'one block held');
    engine.locks.release(19, false);
    const back = Buffer.alloc(8 * BLOCK);
    await engine.read(back, 16 * BLOCK);
    const expected = Buffer.alloc(8 * BLOCK);
    await origin.read(expected, 16 * BLOCK);
    span.copy(expected, 100);
    assert.deepEqual(back, expected);
    await engine.flush();
    await engine.writebackAll();
    const stored = Buffer.alloc(8 * BLOCK);
    await origin.read(stored, 16 * BLOCK);
    assert.deepEqual(stored, expected, 'the origin has the write');
  } finally {
    await engine.close();
  }
});

test('with the RAM tier on, a write RAM declines (dirty bound reached) is written now as an SSD-tier hit if none of its blocks has a page', async () => {
  const { engine } = await openFileEngine(directory, 'ram-full', { inlineIo: true, ramBytes: 16 * BLOCK, readaheadBytes: 0 });
  try {
    await engine.read(Buffer.alloc(2 * BLOCK), 100 * BLOCK); // blocks 100-101 on the SSD tier
    await engine.setRamBytes(0); // start the RAM tier empty
    await engine.setRamBytes(16 * BLOCK);
    const ram = engine.ram!;
    await engine.read(Buffer.alloc(BLOCK), 101 * BLOCK); // block 101 gets a clean page
    assert.ok(ram.lookup(100) < 0 && ram.lookup(101) >= 0);
    // Dirty pages up to the bound, in this turn (the RAM writer pushes nothing meanwhile).
    for (let block = 200; ram.dirtyCount < ram.dirtyMax; block++) assert.equal(engine.writeNow(Buffer.alloc(BLOCK, 1), block * BLOCK), true);
    const dirtyPages = ram.dirtyCount;
    const ssdDirty = engine.table.dirtyCount;
    const data = Buffer.alloc(BLOCK, 0x42);
    assert.equal(engine.writeNow(data, 100 * BLOCK), true, 'no page: written now on the SSD tier');
    assert.ok(ram.lookup(100) < 0, 'and given no page');
    assert.equal(ram.dirtyCount, dirtyPages);
    assert.equal(engine.table.dirtyCount, ssdDirty + 1, 'dirty on the SSD tier');
    assert.equal(engine.writeNow(data, 101 * BLOCK), false, 'a block with a page is left to write()');
    await engine.write(data, 101 * BLOCK);
    for (const block of [100, 101]) {
      const back = Buffer.alloc(BLOCK);
      await engine.read(back, block * BLOCK);
      assert.deepEqual(back, data, `block ${block} reads back`);
    }
  } finally {
    await engine.close();
  }
});
