import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../devices/memory-device.js';
import { computeLayout, RECORD_BYTES, METADATA_PAGE_BYTES } from '../format/layout.js';
import { MetadataRecord, RECORD_DATA_CRC, RECORD_DIRTY, RECORD_EMPTY, RECORD_FOUND, RECORD_VALID, decodeRecord } from '../format/record.js';
import { Superblock } from '../format/superblock.js';
import { BlockDevice } from '../devices/block-device.js';
import { MetadataStore, newUuid } from './metadata-store.js';

async function formatted(cacheBlocks: number): Promise<{ device: BlockDevice; store: MetadataStore; superblock: Superblock }> {
  const blockBytes = 4096;
  const layout = computeLayout(8192 + Math.ceil((cacheBlocks * RECORD_BYTES) / 4096) * 4096 + (cacheBlocks + 1) * blockBytes, blockBytes, 8);
  const device = new MemoryDevice(8192 + layout.dataOffsetBytes + layout.cacheBlocks * blockBytes);
  const superblock: Superblock = {
    uuid: newUuid(), sequence: 0, commitSequence: 0, blockBytes, assoc: layout.assoc, assocFull: false,
    cacheBlocks: layout.cacheBlocks, metadataOffsetBytes: layout.metadataOffsetBytes, dataOffsetBytes: layout.dataOffsetBytes,
    cacheDeviceBytes: device.sizeBytes, mode: 'writeback', policy: 'lru', cleanShutdown: true, originWritesUncommitted: false,
    origin: { sizeBytes: 1 << 30, name: 'origin', deviceId: 0, inode: 0, fingerprint: 0, fingerprintValid: false },
  };
  const store = await MetadataStore.format(device, layout, superblock);
  return { device, store, superblock: store.superblock };
}

async function recordsOf(device: BlockDevice, superblock: Superblock): Promise<Map<number, MetadataRecord>> {
  const records = new Map<number, MetadataRecord>();
  await MetadataStore.open(device, superblock).scan({
    blocksMultiple: superblock.assoc,
    visit: (chunk) => {
      for (let slot = chunk.firstCacheBlock; slot < chunk.firstCacheBlock + chunk.blockCount; slot++) {
        const record: MetadataRecord = { originBlock: 0, sequence: 0, dataCrc: 0, flags: 0 };
        const status = chunk.decode(slot, record);
        assert.ok(status === RECORD_EMPTY || status === RECORD_FOUND, `record ${slot}`);
        if (status === RECORD_FOUND) records.set(slot, record);
      }
    },
  });
  return records;
}

test('staged records reach their pages; the other records of a page stay as they were', async () => {
  const { device, store, superblock } = await formatted(5000);
  const expected = new Map<number, MetadataRecord>();
  const stage = (slot: number, originBlock: number, sequence: number) => {
    const record = { originBlock, sequence, dataCrc: 0, flags: RECORD_VALID | RECORD_DIRTY };
    store.stage(slot, record);
    expected.set(slot, record);
  };
  // Scattered, adjacent and repeated slots (the later record of a slot wins), more than the list's first capacity.
  for (let i = 0; i < 3000; i++) stage((i * 7919) % superblock.cacheBlocks, 100 + i, 1);
  stage(5, 999, 2);
  stage(5, 1000, 3);
  assert.ok((await store.writeStaged()).pagesWritten > 0);
  assert.deepEqual(await recordsOf(device, superblock), expected);
  // A second round over the same pages keeps the first round's records.
  for (let slot = 120; slot < 140; slot++) stage(slot, 5000 + slot, 4);
  store.stageEmpty(5);
  expected.delete(5);
  await store.writeStaged();
  assert.deepEqual(await recordsOf(device, superblock), expected);
  assert.deepEqual(await store.writeStaged(), { pagesWritten: 0, deferredBlocks: [] }, 'nothing staged, nothing written');
});

test('records cleared during a scan are staged and written; a failed write-out throws', async () => {
  const { device, store, superblock } = await formatted(2000);
  for (let slot = 0; slot < superblock.cacheBlocks; slot += 3) store.stage(slot, { originBlock: slot, sequence: 1, dataCrc: 0, flags: RECORD_VALID });
  await store.writeStaged();
  let visited = 0;
  const reopened = MetadataStore.open(device, superblock);
  await reopened.scan({
    blocksMultiple: superblock.assoc,
    visit: (chunk) => {
      assert.equal(chunk.firstCacheBlock % superblock.assoc, 0);
      assert.ok(chunk.allEmpty(chunk.firstCacheBlock + 1, 2));
      for (let slot = chunk.firstCacheBlock; slot < chunk.firstCacheBlock + chunk.blockCount; slot++) {
        visited++;
        if (slot % 6 === 0) chunk.clear(slot);
      }
    },
  });
  assert.equal(visited, superblock.cacheBlocks);
  assert.ok(reopened.stagedPages > 0);
  await reopened.writeStaged();
  const left = await recordsOf(device, superblock);
  for (let slot = 0; slot < superblock.cacheBlocks; slot++) assert.equal(left.has(slot), slot % 3 === 0 && slot % 6 !== 0, `slot ${slot}`);
  // A write-out that fails forgets its pages (the engine stages its records again after a failed commit).
  const failing: BlockDevice = Object.create(device, { write: { value: () => Promise.reject(new Error('injected')) } });
  const broken = MetadataStore.open(failing, superblock);
  broken.stage(1, { originBlock: 1, sequence: 2, dataCrc: 0, flags: RECORD_VALID });
  await assert.rejects(broken.writeStaged(), /injected/);
  assert.equal(broken.stagedPages, 0);
  const page = Buffer.alloc(METADATA_PAGE_BYTES);
  await device.read(page, superblock.metadataOffsetBytes);
  assert.equal(decodeRecord(page, RECORD_BYTES, 1, superblock.uuid.readUInt32LE(0)).kind, 'empty');
});

/** `device` whose reads of [from, to) fail (EIO) while `failing.on`; counts reads. */
function withReadErrors(device: BlockDevice, from: number, to: number) {
  const failing = { on: true, reads: 0 };
  const wrapped: BlockDevice = Object.create(device, {
    read: {
      value: (buffer: Buffer, offset: number) => {
        failing.reads++;
        if (failing.on && offset < to && offset + buffer.length > from) return Promise.reject(new Error('injected EIO'));
        return device.read(buffer, offset);
      },
    },
  });
  return { device: wrapped, failing };
}

test('no copy of the region in memory: a store that never scanned keeps the unstaged records of the pages it writes', async () => {
  const { device, store, superblock } = await formatted(1000);
  for (let slot = 0; slot < 300; slot++) store.stage(slot, { originBlock: slot + 7, sequence: 1, dataCrc: slot, flags: RECORD_VALID });
  await store.writeStaged();
  const fresh = MetadataStore.open(device, superblock); // no scan: nothing of the region is in memory
  fresh.stageFields(5, 77, 2, 0, RECORD_VALID | RECORD_DIRTY);
  fresh.stageEmpty(200);
  assert.equal((await fresh.writeStaged()).pagesWritten, 2);
  const records = await recordsOf(device, superblock);
  assert.equal(records.size, 299);
  assert.deepEqual(records.get(5), { originBlock: 77, sequence: 2, dataCrc: 0, flags: RECORD_VALID | RECORD_DIRTY });
  assert.deepEqual(records.get(6), { originBlock: 13, sequence: 1, dataCrc: 6, flags: RECORD_VALID });
  assert.deepEqual(records.get(299), { originBlock: 306, sequence: 1, dataCrc: 299, flags: RECORD_VALID });
  assert.equal(records.has(200), false);
});

test('a page whose records are all staged is written without reading it', async () => {
  const { device, superblock } = await formatted(1000);
  const { device: unreadable, failing } = withReadErrors(device, 0, device.sizeBytes);
  const store = MetadataStore.open(unreadable, superblock);
  const perPage = METADATA_PAGE_BYTES / RECORD_BYTES;
  for (let slot = perPage; slot < 3 * perPage; slot++) store.stageFields(slot, slot, 1, 0, RECORD_VALID | RECORD_DIRTY);
  assert.deepEqual(await store.writeStaged(), { pagesWritten: 2, deferredBlocks: [] });
  assert.equal(failing.reads, 0);
  failing.on = false;
  assert.equal((await recordsOf(device, superblock)).size, 2 * perPage);
});

test('an unreadable page: its deferrable records are handed back unwritten, any other record fails the write-out', async () => {
  const { device, store: first, superblock } = await formatted(1000);
  const perPage = METADATA_PAGE_BYTES / RECORD_BYTES;
  for (let slot = 0; slot < 4 * perPage; slot += 2) first.stageFields(slot, slot, 1, 0, RECORD_VALID | RECORD_DIRTY);
  await first.writeStaged();
  const pageOne = superblock.metadataOffsetBytes + METADATA_PAGE_BYTES;
  const { device: flaky, failing } = withReadErrors(device, pageOne, pageOne + METADATA_PAGE_BYTES);
  const store = MetadataStore.open(flaky, superblock);
  // Page 0 and page 2 are readable; page 1 is not. A run covers all three.
  store.stageFields(1, 1001, 2, 0xabc, RECORD_VALID | RECORD_DATA_CRC, true);
  store.stageFields(perPage + 1, 1002, 2, 0xdef, RECORD_VALID | RECORD_DATA_CRC, true);
  store.stageFields(perPage + 3, 1003, 2, 0, 0, true);
  store.stageFields(2 * perPage + 1, 1004, 2, 0, RECORD_VALID | RECORD_DATA_CRC, true);
  const out = await store.writeStaged();
  assert.deepEqual(out, { pagesWritten: 2, deferredBlocks: [perPage + 1, perPage + 3] });
  failing.on = false;
  let records = await recordsOf(device, superblock);
  assert.equal(records.get(1)?.originBlock, 1001);
  assert.equal(records.get(2 * perPage + 1)?.originBlock, 1004);
  assert.equal(records.get(perPage + 1), undefined, 'the deferred record was not written');
  assert.equal(records.get(perPage + 2)?.originBlock, perPage + 2, 'the unreadable page is untouched');
  // A record that may not be deferred (here: dirty) in an unreadable page fails the write-out.
  failing.on = true;
  store.stageFields(perPage + 1, 1002, 3, 0xdef, RECORD_VALID | RECORD_DATA_CRC, true);
  store.stageFields(perPage + 5, 1005, 3, 0, RECORD_VALID | RECORD_DIRTY);
  await assert.rejects(store.writeStaged(), /injected EIO/);
  assert.equal(store.stagedPages, 0, 'a failed write-out forgets its records (the engine stages them again)');
  assert.throws(() => store.stageFields(7, 7, 3, 0, RECORD_VALID | RECORD_DIRTY, true), /never deferrable/);
  failing.on = false;
  records = await recordsOf(device, superblock);
  assert.equal(records.get(perPage + 5), undefined);
  assert.equal(records.get(perPage + 4)?.originBlock, perPage + 4);
});
