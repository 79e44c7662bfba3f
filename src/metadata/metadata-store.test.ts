import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../devices/memory-device.js';
import { computeLayout, RECORD_BYTES, METADATA_PAGE_BYTES } from '../format/layout.js';
import { MetadataRecord, RECORD_DIRTY, RECORD_EMPTY, RECORD_FOUND, RECORD_VALID, decodeRecord } from '../format/record.js';
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
  assert.ok((await store.writeStaged()) > 0);
  assert.deepEqual(await recordsOf(device, superblock), expected);
  // A second round over the same pages keeps the first round's records.
  for (let slot = 120; slot < 140; slot++) stage(slot, 5000 + slot, 4);
  store.stageEmpty(5);
  expected.delete(5);
  await store.writeStaged();
  assert.deepEqual(await recordsOf(device, superblock), expected);
  assert.equal(await store.writeStaged(), 0, 'nothing staged, nothing written');
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
