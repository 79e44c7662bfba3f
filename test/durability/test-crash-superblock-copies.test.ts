// The two superblock copies protect against a torn write only if the copy not
// being written is durable. A commit's superblock write followed at once by an
// intent write (an origin write right after the commit cleared the intent) used
// to leave both copies unflushed, and a crash could tear both: the cache would
// not open again (found by the crash simulator). Here the commit's flush never
// completes, so the second superblock write must not even start.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlockDevice } from '../../src/devices/block-device.js';
import { createCache, openCache } from '../../src/cache/open-cache.js';
import { SUPERBLOCK_BYTES, SUPERBLOCK_COPIES } from '../../src/format/layout.js';
import { CrashDevice } from '../../src/testing/crash-device.js';
import { Prng } from '../../src/testing/prng.js';

const MiB = 1024 * 1024;
const LOCATION = { name: 'origin', deviceId: 1, inode: 1 };
const TRIALS = 40;

async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await null;
}

test('a crash between two superblock writes always leaves one copy readable', async () => {
  let unopenable = 0;
  let overlapped = 0;
  for (let trial = 0; trial < TRIALS; trial++) {
    const origin = new CrashDevice(2 * MiB, { name: 'origin' });
    const device = new CrashDevice(1 * MiB, { name: 'cache' });
    let armed = false;
    let gate = false;
    let superblockWritesAfterGate = 0;
    const cache: BlockDevice = {
      name: 'cache', sizeBytes: device.sizeBytes, capabilities: device.capabilities,
      read: (target, offset) => device.read(target, offset),
      write: async (source, offset, flags) => {
        await device.write(source, offset, flags);
        if (armed && offset < SUPERBLOCK_BYTES * SUPERBLOCK_COPIES) {
          if (gate) superblockWritesAfterGate++;
          else gate = true;
        }
      },
      // Once a superblock write has completed, flushes hang: the power fails before any completes.
      flush: () => (gate ? new Promise<void>(() => {}) : device.flush()),
      trim: (offset, length, flags) => device.trim(offset, length, flags),
      writeZeroes: (offset, length, flags) => device.writeZeroes(offset, length, flags),
      close: async () => {},
    };
    await createCache({ cache, origin, originLocation: LOCATION, mode: 'writearound', blockBytes: 4096, assoc: 8, policy: 'lru' });
    const { engine } = await openCache({ cache, origin, originLocation: LOCATION, commitIntervalMs: 0 });
    await engine.write(Buffer.alloc(4096, 1), 0); // sets the intent
    armed = true;
    void engine.commit().catch(() => {}); // clears the intent and writes the superblock
    for (let turn = 0; turn < 20 && !gate; turn++) await null;
    void engine.write(Buffer.alloc(4096, 2), 4096).catch(() => {}); // needs the intent again
    await turns(50);
    if (superblockWritesAfterGate > 0) overlapped++;
    const survivor = device.crash(new Prng(trial), 'random');
    try {
      await openCache({ cache: survivor, origin, originLocation: LOCATION, commitIntervalMs: 0 });
    } catch {
      unopenable++;
    }
  }
  assert.equal(overlapped, 0, 'a superblock write started before the previous one was flushed');
  assert.equal(unopenable, 0, 'the cache could not be opened after a crash');
});
