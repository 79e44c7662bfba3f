// Commits while metadata pages cannot be read. The store keeps no copy of the record
// region, so it reads each page it patches; when that read fails, records that neither
// say dirty nor replace a dirty record are deferred (retried at the next commit) and the
// commit succeeds, with the superblock telling recovery not to trust clean records;
// any other record fails the commit. A clean shutdown is not recorded while any record
// is deferred.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../devices/memory-device.js';
import { BlockDevice } from '../devices/block-device.js';
import { readSuperblock } from '../metadata/metadata-store.js';
import { createCache, openCache } from './open-cache.js';

const BLOCK = 4096;
const LOCATION = { name: 'deferral-origin', deviceId: 3, inode: 3 };
const NEVER_MS = 600_000;

/** A cache device whose metadata-region reads fail while `switch.on`. */
function metadataReadErrors(device: BlockDevice, regionStart: () => number, regionEnd: () => number) {
  const errors = { on: false };
  const wrapped: BlockDevice = Object.create(device, {
    read: {
      value: (buffer: Buffer, offset: number) => {
        if (errors.on && offset < regionEnd() && offset + buffer.length > regionStart()) return Promise.reject(new Error('injected EIO'));
        return device.read(buffer, offset);
      },
    },
  });
  return { device: wrapped, errors };
}

async function setUp() {
  const memory = new MemoryDevice(8 * 1024 * 1024);
  const origin = new MemoryDevice(32 * 1024 * 1024);
  for (let b = 0; b < 64; b++) await origin.write(Buffer.alloc(BLOCK, b + 1), b * BLOCK);
  await createCache({ cache: memory, origin, originLocation: LOCATION, mode: 'writeback', blockBytes: BLOCK, assoc: 'full' });
  const { superblock } = await readSuperblock(memory);
  const { device: cache, errors } = metadataReadErrors(memory, () => superblock.metadataOffsetBytes, () => superblock.dataOffsetBytes);
  // No readahead: the tests count the clean records their own reads create.
  const open = () => openCache({ cache, origin, originLocation: LOCATION, commitIntervalMs: NEVER_MS, readaheadBytes: 0 });
  const { engine } = await open();
  return { engine, errors, memory, origin, open };
}

test('clean records whose pages cannot be read are deferred: the commit succeeds, recovery distrusts clean copies, the next commit writes them', async () => {
  const { engine, errors, memory } = await setUp();
  const target = Buffer.alloc(BLOCK);
  for (let b = 0; b < 8; b++) await engine.read(target, b * BLOCK); // clean fills: records to commit
  errors.on = true;
  await engine.commit();
  assert.equal(engine.stats.recordsDeferred, 8);
  assert.equal(engine.stats.cacheReadErrors, 1, 'counted as a cache-device error');
  assert.equal((await readSuperblock(memory)).superblock.originWritesUncommitted, true, 'recovery will drop clean copies after a crash');
  // A dirty record may not be deferred: the commit fails and FLUSH would report the error.
  await engine.write(Buffer.alloc(BLOCK, 0xee), 20 * BLOCK);
  await assert.rejects(engine.commit(), /injected EIO/);
  errors.on = false;
  await engine.commit();
  assert.equal(engine.stats.recordsDeferred, 8, 'nothing deferred once the pages read again');
  assert.equal((await readSuperblock(memory)).superblock.originWritesUncommitted, false, 'clean records trusted again');
  await engine.close();
  assert.equal((await readSuperblock(memory)).superblock.cleanShutdown, true);
});

test('a shutdown with records still deferred is not recorded as clean: the next start recovers and drops the clean copies', async () => {
  const { engine, errors, memory, open } = await setUp();
  await engine.write(Buffer.alloc(BLOCK, 0xd1), 40 * BLOCK); // dirty, committed while the pages read
  await engine.commit();
  const target = Buffer.alloc(BLOCK);
  for (let b = 0; b < 8; b++) await engine.read(target, b * BLOCK);
  errors.on = true;
  await engine.close();
  const { superblock } = await readSuperblock(memory);
  assert.equal(superblock.cleanShutdown, false);
  assert.equal(superblock.originWritesUncommitted, true);
  errors.on = false;
  const { engine: reopened, report } = await open();
  assert.equal(report.cleanShutdown, false);
  assert.equal(report.keptDirty, 1, 'the dirty block survives');
  assert.equal(report.keptClean, 0, 'clean copies are not trusted');
  await reopened.read(target, 40 * BLOCK);
  assert.ok(target.equals(Buffer.alloc(BLOCK, 0xd1)));
  await reopened.read(target, 3 * BLOCK);
  assert.ok(target.equals(Buffer.alloc(BLOCK, 4)));
  await reopened.close();
});

test('a clean record that replaces a dirty one on disk is never deferred: written back while the pages cannot be read, the commit fails', async () => {
  const { engine, errors, memory } = await setUp();
  await engine.write(Buffer.alloc(BLOCK, 0xab), 30 * BLOCK);
  await engine.commit(); // the dirty record is on disk
  errors.on = true;
  await assert.rejects(engine.writebackAll(), /injected EIO/);
  assert.equal(engine.stats.recordsDeferred, 0);
  assert.equal((await readSuperblock(memory)).superblock.originWritesUncommitted, false);
  errors.on = false;
  await engine.commit(); // staged again, now written
  await engine.close();
  assert.equal((await readSuperblock(memory)).superblock.cleanShutdown, true);
});
