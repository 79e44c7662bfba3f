// A writeback write of several whole blocks that are all cached on the SSD tier
// takes one exclusive range and one cache write per run of slots (writeRunOfHits).
// These tests pin what that path must keep from the per-block one: every block
// becomes dirty and reaches the origin, clean RAM copies are updated (never left
// stale), a large write allocates no RAM pages, and a failed cache write fails
// the request, drops the RAM copies it may have outdated and releases the range.
// In writethrough the same path writes the origin in one call beside the cache
// runs: the blocks stay clean with their new checksums; a failed origin write
// drops them from both tiers and fails; a failed cache run drops only its blocks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../devices/memory-device.js';
import { RAM_WRITE_BYTES_MAX } from '../constants.js';
import { TestDevice } from '../testing/test-device.js';
import { CacheMode } from '../format/superblock.js';
import { crc32c } from '../stdx/checksum.js';
import { HAS_CRC } from './slot-table.js';
import { createCache, openCache } from './open-cache.js';

const BLOCK = 4096;
const LOCATION = { name: 'write-hit-run-origin', deviceId: 17, inode: 17 };
const MiB = 1024 * 1024;
/** Blocks per large write: over RAM_WRITE_BYTES_MAX, so the RAM tier does not take it whole. */
const RUN = RAM_WRITE_BYTES_MAX / BLOCK + 32;

function pattern(blocks: number, version: number): Buffer {
  const data = Buffer.alloc(blocks * BLOCK);
  for (let block = 0; block < blocks; block++) data.fill((version * 7 + block) & 0xff, block * BLOCK, (block + 1) * BLOCK);
  return data;
}

async function open(ramBytes: number, mode: CacheMode = 'writeback') {
  const cache = new TestDevice(new MemoryDevice(8 * MiB));
  const origin = new TestDevice(new MemoryDevice(16 * MiB));
  await createCache({ cache, origin, originLocation: LOCATION, mode, blockBytes: BLOCK });
  const { engine } = await openCache({ cache, origin, originLocation: LOCATION, ramBytes, commitIntervalMs: 0, readaheadBytes: 0 });
  return { cache, origin, engine };
}

test('a write over a run of cached blocks makes each dirty, reads back and reaches the origin (RAM tier off)', async () => {
  const { origin, engine } = await open(0);
  try {
    const at = 1 * MiB;
    await engine.write(pattern(RUN, 1), at); // a cold run: cached dirty
    await engine.flush();
    await engine.writebackAll();
    assert.equal(engine.table.dirtyCount, 0, 'cleaned');
    const hitsBefore = engine.stats.writeHits;
    const newer = pattern(RUN, 2);
    await engine.write(newer, at);
    assert.equal(engine.stats.writeHits - hitsBefore, RUN, 'every block was a write hit');
    assert.equal(engine.table.dirtyCount, RUN, 'every block is dirty again');
    assert.equal(engine.locks.lockedBlocks, 0, 'the range is released');
    const back = Buffer.alloc(newer.length);
    await engine.read(back, at);
    assert.deepEqual(back, newer);
    await engine.flush();
    await engine.writebackAll();
    const stored = Buffer.alloc(newer.length);
    await origin.read(stored, at);
    assert.deepEqual(stored, newer, 'the origin has the rewrite');
  } finally {
    await engine.close();
  }
});

test('a large write over cached blocks updates their clean RAM copies and takes no RAM page for the others', async () => {
  const { engine } = await open(2 * MiB);
  const ram = engine.ram!;
  try {
    const at = 2 * MiB;
    const first = at / BLOCK;
    await engine.write(pattern(RUN, 1), at); // a cold run goes to the SSD tier
    // Reading the first half puts clean copies of it in RAM.
    const half = Math.floor(RUN / 2);
    await engine.read(Buffer.alloc(half * BLOCK), at);
    for (let block = first; block < first + half; block++) assert.ok(ram.lookup(block) >= 0, `block ${block} is in RAM`);
    const newer = pattern(RUN, 2);
    await engine.write(newer, at);
    for (let block = first; block < first + RUN; block++) {
      const page = ram.lookup(block);
      if (block < first + half) assert.ok(page >= 0 && !ram.isDirty(page), `block ${block} keeps a clean RAM copy`);
      else assert.ok(page < 0, `block ${block} took no RAM page`);
    }
    assert.equal(engine.table.dirtyCount, RUN, 'the SSD tier holds every block dirty');
    const back = Buffer.alloc(newer.length);
    await engine.read(back, at);
    assert.deepEqual(back, newer, 'no block reads an older version (RAM copies included)');

    // Half the blocks cached, half not: the per-block path, which must not allocate RAM pages either.
    const mixedAt = 6 * MiB;
    await engine.write(pattern(half, 3), mixedAt);
    const mixed = pattern(RUN, 4);
    await engine.write(mixed, mixedAt);
    for (let block = mixedAt / BLOCK + half; block < mixedAt / BLOCK + RUN; block++) {
      assert.ok(ram.lookup(block) < 0, `uncached block ${block} took no RAM page`);
    }
    const mixedBack = Buffer.alloc(mixed.length);
    await engine.read(mixedBack, mixedAt);
    assert.deepEqual(mixedBack, mixed);
  } finally {
    await engine.close();
  }
});

test('a failed cache write fails the request, drops the RAM copies it may have outdated and releases every block', async () => {
  const { cache, engine } = await open(2 * MiB);
  const ram = engine.ram!;
  try {
    const at = 3 * MiB;
    const first = at / BLOCK;
    const older = pattern(RUN, 1);
    await engine.write(older, at);
    await engine.read(Buffer.alloc(4 * BLOCK), at); // clean RAM copies of the first 4 blocks
    assert.ok(ram.lookup(first) >= 0);
    cache.failWrites = true;
    await assert.rejects(engine.write(pattern(RUN, 2), at), /injected write error/);
    cache.failWrites = false;
    assert.equal(engine.locks.lockedBlocks, 0, 'the range is released');
    for (let block = first; block < first + 4; block++) assert.ok(ram.lookup(block) < 0, `block ${block}'s RAM copy is dropped`);
    const back = Buffer.alloc(older.length);
    await engine.read(back, at);
    assert.deepEqual(back, older, 'the failed write changed nothing the cache serves');
    const newest = pattern(RUN, 3);
    await engine.write(newest, at);
    await engine.read(back, at);
    assert.deepEqual(back, newest);
  } finally {
    await engine.close();
  }
});

test('a large write over blocks that all have RAM pages completes in RAM at once; one block without a page declines it', async () => {
  const { engine } = await open(2 * MiB);
  const ram = engine.ram!;
  try {
    const at = 4 * MiB;
    const first = at / BLOCK;
    await engine.write(pattern(RUN, 1), at);
    await engine.read(Buffer.alloc(RUN * BLOCK), at); // every block gets a clean RAM copy
    for (let block = first; block < first + RUN; block++) assert.ok(ram.lookup(block) >= 0);
    const newer = pattern(RUN, 2);
    assert.equal(engine.writeNow(newer, at), true, 'completed in RAM');
    for (let block = first; block < first + RUN; block++) assert.ok(ram.isDirty(ram.lookup(block)), `block ${block} is dirty in RAM`);
    const back = Buffer.alloc(newer.length);
    await engine.read(back, at);
    assert.deepEqual(back, newer);
    // One block past the cached ones has no page: the write is declined whole.
    assert.equal(engine.writeNow(pattern(RUN, 3), at + BLOCK), false);
    await engine.flush();
    assert.equal(ram.dirtyCount, 0, 'a flush pushes the pages down');
  } finally {
    await engine.close();
  }
});

for (const ramBytes of [0, 2 * MiB]) {
  test(`writethrough, RAM tier ${ramBytes === 0 ? 'off' : 'on'}: a write over a run of cached blocks reaches the origin at once, leaves them clean with their checksums, updates clean RAM copies`, async () => {
    const { origin, engine } = await open(ramBytes, 'writethrough');
    try {
      const at = 1 * MiB;
      const first = at / BLOCK;
      await engine.write(pattern(RUN, 1), at); // a cold run: cached clean
      await engine.read(Buffer.alloc(RUN * BLOCK), at); // with the RAM tier: clean copies of every block
      const hitsBefore = engine.stats.writeHits;
      const newer = pattern(RUN, 2);
      await engine.write(newer, at);
      assert.equal(engine.stats.writeHits - hitsBefore, RUN, 'every block was a write hit');
      assert.equal(engine.table.dirtyCount, 0, 'writethrough leaves nothing dirty');
      assert.equal(engine.locks.lockedBlocks, 0, 'the range is released');
      for (let i = 0; i < RUN; i++) {
        const slot = engine.index.get(first + i);
        assert.ok(slot >= 0 && engine.table.has(slot, HAS_CRC), `block ${first + i} is cached with a checksum`);
        assert.equal(engine.table.crcOf(slot), crc32c(newer.subarray(i * BLOCK, (i + 1) * BLOCK)), `block ${first + i}'s checksum is the new data's`);
        if (engine.ram !== null) {
          const page = engine.ram.lookup(first + i);
          assert.ok(page >= 0 && !engine.ram.isDirty(page), `block ${first + i} keeps a clean RAM copy`);
        }
      }
      const stored = Buffer.alloc(newer.length);
      await origin.read(stored, at);
      assert.deepEqual(stored, newer, 'the origin has the write before any writeback');
      const back = Buffer.alloc(newer.length);
      await engine.read(back, at);
      assert.deepEqual(back, newer, 'no block reads an older version (RAM copies included)');
    } finally {
      await engine.close();
    }
  });
}

test('writethrough: a failed origin write fails the request and drops every block from both tiers; a failed cache run drops only its blocks', async () => {
  const { cache, origin, engine } = await open(2 * MiB, 'writethrough');
  const ram = engine.ram!;
  try {
    const at = 3 * MiB;
    const first = at / BLOCK;
    await engine.write(pattern(RUN, 1), at);
    await engine.read(Buffer.alloc(RUN * BLOCK), at); // clean RAM copies
    origin.failWrites = true;
    await assert.rejects(engine.write(pattern(RUN, 2), at), /injected write error/);
    origin.failWrites = false;
    assert.equal(engine.locks.lockedBlocks, 0, 'the range is released');
    for (let block = first; block < first + RUN; block++) {
      assert.ok(engine.index.get(block) < 0, `block ${block} is no longer cached`);
      assert.ok(ram.lookup(block) < 0, `block ${block}'s RAM copy is dropped`);
    }
    const back = Buffer.alloc(RUN * BLOCK);
    const stored = Buffer.alloc(RUN * BLOCK);
    await engine.read(back, at);
    await origin.read(stored, at);
    assert.deepEqual(back, stored, 'the export reads what the origin holds');

    // Cached again, then the cache device fails: the origin has the data, so the write succeeds.
    await engine.read(Buffer.alloc(RUN * BLOCK), at);
    await engine.setRamBytes(0);
    for (let block = first; block < first + RUN; block++) assert.ok(engine.index.get(block) >= 0, `block ${block} is cached`);
    cache.failWrites = true;
    const newest = pattern(RUN, 3);
    await engine.write(newest, at);
    cache.failWrites = false;
    for (let block = first; block < first + RUN; block++) assert.ok(engine.index.get(block) < 0, `block ${block}'s stale copy is dropped`);
    await engine.read(back, at);
    assert.deepEqual(back, newest);
    await origin.read(stored, at);
    assert.deepEqual(stored, newest);
  } finally {
    await engine.close();
  }
});
