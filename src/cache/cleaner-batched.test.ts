// The flush's batched path (cleaner.ts writeChunks, scatter-io.ts): a cache full
// of dirty blocks written in random order, over file devices, flushes to an
// exact origin with correct block checksums, using batched cache reads (and
// batched origin writes for single-block runs). When the batched read fails the
// cleaner reads again through the engine; when that fails too the flush fails
// and the blocks stay dirty, and a later flush finishes the job.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileDevice } from '../devices/file-device.js';
import { BlockDevice, WriteFlags } from '../devices/block-device.js';
import { PieceDevice, scatterIo } from '../devices/scatter-io.js';
import { createCache, openCache } from './open-cache.js';
import { BlockcacheError } from '../stdx/errors.js';
import { crc32c } from '../stdx/checksum.js';
import { DIRTY, HAS_CRC, VALID } from './slot-table.js';
import { MetadataStore } from '../metadata/metadata-store.js';
import { Superblock } from '../format/superblock.js';
import { MetadataRecord, RECORD_DATA_CRC, RECORD_FOUND, RECORD_VALID } from '../format/record.js';

/** Every valid record on the cache device, by cache block. */
async function durableRecords(device: BlockDevice, superblock: Superblock): Promise<Map<number, MetadataRecord>> {
  const records = new Map<number, MetadataRecord>();
  await MetadataStore.open(device, superblock).scan({
    blocksMultiple: 1,
    visit: (chunk) => {
      for (let slot = chunk.firstCacheBlock; slot < chunk.firstCacheBlock + chunk.blockCount; slot++) {
        const record: MetadataRecord = { originBlock: 0, sequence: 0, dataCrc: 0, flags: 0 };
        if (chunk.decode(slot, record) === RECORD_FOUND) records.set(slot, record);
      }
    },
  });
  return records;
}

const BLOCK = 4096;
const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'blockcache-cleaner-batched-'));
after(async () => {
  await scatterIo.close();
  fs.rmSync(directory, { recursive: true, force: true });
});

/** A pass-through device over a FileDevice that counts batched calls and can fail them (or plain reads). */
class Spy implements BlockDevice, PieceDevice {
  readonly name: string;
  readonly sizeBytes: number;
  readonly capabilities;
  pieceReads = 0;
  pieceWrites = 0;
  failPieceReads = false;
  failReads = false;
  constructor(private readonly inner: FileDevice) {
    this.name = inner.name;
    this.sizeBytes = inner.sizeBytes;
    this.capabilities = inner.capabilities;
  }
  read(target: Buffer, offsetBytes: number): Promise<void> {
    if (this.failReads && offsetBytes + target.length > 1024 * 1024) return Promise.reject(new BlockcacheError('EIO', 'injected read error'));
    return this.inner.read(target, offsetBytes);
  }
  write(source: Buffer, offsetBytes: number, flags?: WriteFlags): Promise<void> { return this.inner.write(source, offsetBytes, flags); }
  flush(): Promise<void> { return this.inner.flush(); }
  trim(offsetBytes: number, lengthBytes: number, flags?: WriteFlags): Promise<void> { return this.inner.trim(offsetBytes, lengthBytes, flags); }
  writeZeroes(offsetBytes: number, lengthBytes: number): Promise<void> { return this.inner.writeZeroes(offsetBytes, lengthBytes); }
  close(): Promise<void> { return this.inner.close(); }
  readPieces(positions: Float64Array, lengths: Uint32Array, memory: SharedArrayBuffer, checksums?: boolean): Promise<Uint32Array | undefined> {
    this.pieceReads++;
    if (this.failPieceReads) return Promise.reject(new BlockcacheError('EIO', 'injected batched read error'));
    return this.inner.readPieces(positions, lengths, memory, checksums);
  }
  writePieces(positions: Float64Array, lengths: Uint32Array, memory: SharedArrayBuffer): Promise<void> {
    this.pieceWrites++;
    return this.inner.writePieces(positions, lengths, memory);
  }
}

function shuffle(values: number[], seed: number): number[] {
  for (let i = values.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
  return values;
}

async function setUp(name: string, cacheMiB: number, originMiB: number) {
  const cachePath = path.join(directory, `${name}-cache.img`);
  const originPath = path.join(directory, `${name}-origin.img`);
  const cache = new Spy(await FileDevice.open(cachePath, { createSizeBytes: cacheMiB * 1024 * 1024 }));
  const origin = new Spy(await FileDevice.open(originPath, { createSizeBytes: originMiB * 1024 * 1024 }));
  const originLocation = { name: originPath, deviceId: fs.statSync(originPath).dev, inode: fs.statSync(originPath).ino };
  await createCache({ cache, origin, originLocation, mode: 'writeback', blockBytes: BLOCK, assoc: 'full' });
  const { engine } = await openCache({ cache, origin, originLocation, settings: { dirtyThresholdPercent: 100 } });
  return { cache, origin, engine, originPath };
}

/** Writes `blocks` (origin block numbers) in random order, each filled with a value derived from it. */
async function dirty(engine: Awaited<ReturnType<typeof setUp>>['engine'], blocks: number[], generation: number): Promise<void> {
  const order = shuffle([...blocks], 99 + generation);
  for (let i = 0; i < order.length; i += 32) {
    await Promise.all(order.slice(i, i + 32).map((block) => engine.write(content(block, generation), block * BLOCK)));
  }
}

function content(block: number, generation: number): Buffer {
  const data = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK; i += 4) data.writeUInt32LE((block * 2654435761 + i * 31 + generation) >>> 0, i);
  return data;
}

function checkOrigin(originPath: string, blocks: number[], generation: number): void {
  const origin = fs.readFileSync(originPath);
  for (const block of blocks) {
    assert.ok(origin.subarray(block * BLOCK, (block + 1) * BLOCK).equals(content(block, generation)), `origin block ${block}`);
  }
}

for (const stride of [1, 2]) {
  test(`flush of random-order dirty data (stride ${stride}) is exact and uses batched I/O`, async () => {
    const { cache, origin, engine, originPath } = await setUp(`stride${stride}`, 16, 64);
    try {
      const count = Math.floor(engine.mapping.cacheBlocks * 0.8);
      const blocks = Array.from({ length: count }, (_, i) => 100 + i * stride);
      await dirty(engine, blocks, 1);
      assert.equal(engine.table.dirtyCount, count);
      await engine.writebackAll();
      assert.equal(engine.table.dirtyCount, 0);
      checkOrigin(originPath, blocks, 1);
      assert.ok(cache.pieceReads > 0, 'batched cache reads');
      if (stride === 2) assert.ok(origin.pieceWrites > 0, 'batched origin writes of single-block runs');
      // Every written-back block is clean and valid, and its durable record carries the checksum
      // of its data (which then leaves memory).
      const records = await durableRecords(cache, engine.store.superblock);
      for (const block of blocks.slice(0, 200)) {
        const slot = engine.index.get(block);
        assert.ok(slot >= 0 && engine.table.has(slot, VALID) && !engine.table.has(slot, DIRTY) && !engine.table.has(slot, HAS_CRC));
        const record = records.get(slot);
        assert.ok(record && record.originBlock === block && record.flags === (RECORD_VALID | RECORD_DATA_CRC), `record of slot ${slot}`);
        assert.equal(record.dataCrc, crc32c(content(block, 1)));
      }
      assert.equal(engine.table.crcsInMemory, 0, 'checksums leave memory once durable');
      // Reads still return the data (from the cache).
      const target = Buffer.alloc(BLOCK);
      await engine.read(target, blocks[7]! * BLOCK);
      assert.ok(target.equals(content(blocks[7]!, 1)));
    } finally {
      await engine.close();
      await cache.close();
      await origin.close();
    }
  });
}

test('a failed batched read falls back to engine reads; a failed read leaves blocks dirty for the next flush', async () => {
  const { cache, origin, engine, originPath } = await setUp('faults', 8, 32);
  try {
    const blocks = Array.from({ length: Math.floor(engine.mapping.cacheBlocks * 0.5) }, (_, i) => i * 3);
    await dirty(engine, blocks, 2);
    cache.failPieceReads = true;
    await engine.writebackAll();
    assert.ok(cache.pieceReads > 0);
    assert.equal(engine.table.dirtyCount, 0);
    checkOrigin(originPath, blocks, 2);

    await dirty(engine, blocks, 3);
    cache.failReads = true; // the fallback fails too for reads reaching past the first MiB of the cache device
    await assert.rejects(engine.writebackAll(), (error: unknown) => error instanceof BlockcacheError && error.code === 'EIO');
    assert.ok(engine.table.dirtyCount > 0, 'blocks whose read failed stay dirty');
    cache.failPieceReads = false;
    cache.failReads = false;
    await engine.writebackAll();
    assert.equal(engine.table.dirtyCount, 0);
    checkOrigin(originPath, blocks, 3);
  } finally {
    await engine.close();
    await cache.close();
    await origin.close();
  }
});

test('a flush reports progress after each chunk and stops between chunks when interrupted', async () => {
  const { cache, origin, engine, originPath } = await setUp('progress', 32, 128);
  try {
    // 80% of a 32 MiB cache: about 26 MiB, one round of 7 chunks of 4 MiB (4 in flight at once).
    const blocks = Array.from({ length: Math.floor(engine.mapping.cacheBlocks * 0.8) }, (_, i) => i);
    await dirty(engine, blocks, 4);
    const interrupt = new AbortController();
    const reported: number[] = [];
    await engine.writebackAll((left) => {
      reported.push(left);
      interrupt.abort(); // as `flush` does on Ctrl-C: the chunks in flight finish, no new one starts
    }, interrupt.signal);
    assert.ok(reported.length >= 1 && reported[0]! < blocks.length, `progress after the first chunk: ${reported.join(',')}`);
    const left = engine.table.dirtyCount;
    assert.ok(left > 0 && left < blocks.length, `an interrupted flush leaves the rest dirty (${left} of ${blocks.length})`);
    assert.equal(engine.table.crcsInMemory, 0, 'what was written back was committed');

    const progress: number[] = [];
    await engine.writebackAll((dirtyBlocks) => progress.push(dirtyBlocks));
    assert.ok(progress.length >= 2, `progress per chunk, not per round: ${progress.join(',')}`);
    assert.deepEqual([...progress].sort((a, b) => b - a), progress, 'dirty blocks left only go down');
    assert.equal(progress[progress.length - 1], 0);
    checkOrigin(originPath, blocks, 4);
  } finally {
    await engine.close();
    await cache.close();
    await origin.close();
  }
});
