// Writes up to RAM_WRITE_BYTES_MAX complete in RAM at once (writeback, writeNow);
// longer ones are declined there and take write(), which writes a run of cold
// blocks to the SSD tier in one piece, leaving no dirty RAM page to push later.
// Every block reads back the newest bytes, and the origin gets them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../devices/memory-device.js';
import { RAM_WRITE_BYTES_MAX } from '../constants.js';
import { createCache, openCache } from './open-cache.js';

const BLOCK = 4096;
const LOCATION = { name: 'ram-write-size-origin', deviceId: 16, inode: 16 };
const MiB = 1024 * 1024;

test('cold writes over RAM_WRITE_BYTES_MAX skip the RAM tier; shorter ones complete there', async () => {
  const cache = new MemoryDevice(8 * MiB);
  const origin = new MemoryDevice(16 * MiB);
  await createCache({ cache, origin, originLocation: LOCATION, mode: 'writeback', blockBytes: BLOCK });
  const { engine } = await openCache({ cache, origin, originLocation: LOCATION, ramBytes: 2 * MiB, commitIntervalMs: 0, readaheadBytes: 0 });
  try {
    const fits = Buffer.alloc(RAM_WRITE_BYTES_MAX, 0x31);
    assert.equal(engine.writeNow(fits, 0), true, `a ${RAM_WRITE_BYTES_MAX}-byte write completes in RAM`);
    assert.equal(engine.ram!.dirtyCount, RAM_WRITE_BYTES_MAX / BLOCK);

    const at = 4 * MiB;
    const large = Buffer.alloc(RAM_WRITE_BYTES_MAX + BLOCK, 0x42);
    assert.equal(engine.writeNow(large, at), false, 'a longer write does not complete in RAM');
    await engine.write(large, at);
    const blocks = large.length / BLOCK;
    for (let block = at / BLOCK; block < at / BLOCK + blocks; block++) {
      const page = engine.ram!.lookup(block);
      assert.ok(page < 0 || !engine.ram!.isDirty(page), `block ${block} has no dirty RAM page`);
      assert.ok(engine.index.get(block) >= 0, `block ${block} was written to the SSD tier`);
    }
    assert.equal(engine.ram!.dirtyCount, RAM_WRITE_BYTES_MAX / BLOCK, 'only the short write is dirty in RAM');

    const back = Buffer.alloc(large.length);
    await engine.read(back, at);
    assert.deepEqual(back, large);
    await engine.flush();
    await engine.writebackAll();
    const stored = Buffer.alloc(at + large.length);
    await origin.read(stored, 0);
    assert.deepEqual(stored.subarray(0, fits.length), fits);
    assert.deepEqual(stored.subarray(at), large);
  } finally {
    await engine.close();
  }
});
