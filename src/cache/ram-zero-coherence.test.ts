// Write-zeroes over a block whose only newer copy is a dirty RAM page: while the
// origin is being zeroed (the engine does not lock the range then), a read sees
// the block's data from before the write-zeroes or zeroes, never the origin's
// older data; afterwards it reads zeroes, and after a flush so does the origin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../devices/memory-device.js';
import { TestDevice } from '../testing/test-device.js';
import { createCache, openCache } from './open-cache.js';

const BLOCK = 4096;
const LOCATION = { name: 'ram-zero-origin', deviceId: 15, inode: 15 };

test('a read during write-zeroes over a dirty RAM page never sees the origin\'s older data', async () => {
  const memory = new MemoryDevice(4 * 1024 * 1024);
  await memory.write(Buffer.alloc(4 * 1024 * 1024, 0x11), 0); // the origin's older data
  const origin = new TestDevice(memory);
  const cache = new MemoryDevice(4 * 1024 * 1024);
  await createCache({ cache, origin, originLocation: LOCATION, mode: 'writeback', blockBytes: BLOCK });
  const { engine } = await openCache({ cache, origin, originLocation: LOCATION, ramBytes: 64 * BLOCK, commitIntervalMs: 0, readaheadBytes: 0 });
  try {
    const newer = Buffer.alloc(BLOCK, 0x22);
    assert.equal(engine.writeNow(newer, 10 * BLOCK), true, 'the write completes into RAM');
    assert.equal(engine.index.get(10), -1, 'the RAM page is the only newer copy');

    origin.hold('writeZeroes');
    const zeroing = engine.writeZeroes(10 * BLOCK, BLOCK);
    await new Promise((resolve) => setImmediate(resolve));
    const during = Buffer.alloc(BLOCK);
    await engine.read(during, 10 * BLOCK);
    origin.release('writeZeroes');
    await zeroing;
    assert.ok(during.equals(newer) || during.equals(Buffer.alloc(BLOCK)), `a read during write-zeroes returned 0x${during[0]!.toString(16)} (the origin's older data is 0x11)`);

    const after = Buffer.alloc(BLOCK, 0xff);
    await engine.read(after, 10 * BLOCK);
    assert.deepEqual(after, Buffer.alloc(BLOCK));
    await engine.flush();
    await engine.writebackAll();
    const onOrigin = Buffer.alloc(BLOCK, 0xff);
    await memory.read(onOrigin, 10 * BLOCK);
    assert.deepEqual(onOrigin, Buffer.alloc(BLOCK));
  } finally {
    await engine.close();
  }
});
