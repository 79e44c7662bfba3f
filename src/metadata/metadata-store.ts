// Persists the cache's mapping on the cache device: superblock copies and the
// metadata region. It writes only what the engine stages and never flushes on
// its own: the engine orders data writes, metadata writes and flushes (see
// docs/DURABILITY.md). Concurrency: one superblock write and one page write-out
// at a time (the engine serialises commits).
//
// The store keeps a mirror of the metadata region in memory, so a commit
// writes whole 4 KiB pages without reading them first.
import { randomBytes } from 'node:crypto';
import { BlockDevice } from '../devices/block-device.js';
import { METADATA_PAGE_BYTES, RECORD_BYTES, RECORDS_PER_PAGE, SUPERBLOCK_BYTES, SUPERBLOCK_COPIES, superblockOffset, Layout } from '../format/layout.js';
import { MetadataRecord, decodeRecord, encodeRecord, recordSalt, RECORD_DIRTY, RECORD_VALID, RECORD_DATA_CRC } from '../format/record.js';
import { Superblock, chooseSuperblock, encodeSuperblock } from '../format/superblock.js';
import { BlockcacheError } from '../stdx/errors.js';
import { assert } from '../stdx/assert.js';
import { MiB } from '../constants.js';

/** Metadata is read at open in chunks of this size. */
const LOAD_CHUNK_BYTES = 4 * MiB;

export async function readSuperblock(device: BlockDevice): Promise<{ superblock: Superblock; damagedCopies: number }> {
  if (device.sizeBytes < SUPERBLOCK_BYTES * SUPERBLOCK_COPIES) {
    throw new BlockcacheError('NOT_A_CACHE', `${device.name} is too small to be a blockcache cache device`);
  }
  const copies: Buffer[] = [];
  for (let copy = 0; copy < SUPERBLOCK_COPIES; copy++) {
    const buffer = Buffer.alloc(SUPERBLOCK_BYTES);
    await device.read(buffer, superblockOffset(copy));
    copies.push(buffer);
  }
  try {
    return chooseSuperblock(copies);
  } catch (error) {
    if (error instanceof BlockcacheError) {
      throw new BlockcacheError(error.code, `${device.name}: ${error.message}`);
    }
    throw error;
  }
}

export function newUuid(): Buffer {
  return randomBytes(16);
}

export class MetadataStore {
  private readonly mirror: Buffer;
  private readonly dirtyPages = new Set<number>();
  private readonly salt: number;
  private superblockValue: Superblock;
  private readonly superblockBuffer = Buffer.alloc(SUPERBLOCK_BYTES);

  private constructor(private readonly device: BlockDevice, superblock: Superblock) {
    this.superblockValue = superblock;
    this.salt = recordSalt(superblock.uuid);
    this.mirror = Buffer.alloc(superblock.dataOffsetBytes - superblock.metadataOffsetBytes);
    assert(this.mirror.length >= superblock.cacheBlocks * RECORD_BYTES);
  }

  get superblock(): Superblock {
    return this.superblockValue;
  }

  /** Writes a fresh, empty cache: zeroed metadata and both superblock copies, then flushes. */
  static async format(device: BlockDevice, layout: Layout, superblock: Superblock): Promise<MetadataStore> {
    assert(superblock.cacheBlocks === layout.cacheBlocks && superblock.dataOffsetBytes === layout.dataOffsetBytes);
    const store = new MetadataStore(device, superblock);
    // Invalidate any previous superblock first, so a crash mid-format never leaves an old cache readable.
    await device.write(Buffer.alloc(SUPERBLOCK_BYTES * SUPERBLOCK_COPIES), 0);
    await device.flush();
    for (let offset = 0; offset < store.mirror.length; offset += LOAD_CHUNK_BYTES) {
      const length = Math.min(LOAD_CHUNK_BYTES, store.mirror.length - offset);
      await device.write(store.mirror.subarray(offset, offset + length), layout.metadataOffsetBytes + offset);
    }
    await device.flush();
    await store.writeSuperblock({ ...superblock, sequence: 0 });
    await store.writeSuperblock({ ...superblock, sequence: 1 });
    await device.flush();
    return store;
  }

  /** Opens the store of an existing cache and reads the whole metadata region into the mirror. */
  static async open(device: BlockDevice, superblock: Superblock, progress?: (doneBytes: number, totalBytes: number) => void): Promise<MetadataStore> {
    const store = new MetadataStore(device, superblock);
    for (let offset = 0; offset < store.mirror.length; offset += LOAD_CHUNK_BYTES) {
      const length = Math.min(LOAD_CHUNK_BYTES, store.mirror.length - offset);
      await device.read(store.mirror.subarray(offset, offset + length), superblock.metadataOffsetBytes + offset);
      progress?.(offset + length, store.mirror.length);
    }
    return store;
  }

  decode(cacheBlock: number) {
    return decodeRecord(this.mirror, cacheBlock * RECORD_BYTES, cacheBlock, this.salt);
  }

  /** Stages a record for the next `writeStaged`. */
  stage(cacheBlock: number, record: MetadataRecord): void {
    encodeRecord(record, cacheBlock, this.salt, this.mirror, cacheBlock * RECORD_BYTES);
    this.dirtyPages.add(Math.floor(cacheBlock / RECORDS_PER_PAGE));
  }

  /** Stages an all-zero (empty) record. */
  stageEmpty(cacheBlock: number): void {
    this.mirror.fill(0, cacheBlock * RECORD_BYTES, (cacheBlock + 1) * RECORD_BYTES);
    this.dirtyPages.add(Math.floor(cacheBlock / RECORDS_PER_PAGE));
  }

  get stagedPages(): number {
    return this.dirtyPages.size;
  }

  /** Writes every staged page (contiguous pages in one write). Does not flush. */
  async writeStaged(): Promise<number> {
    const pages = [...this.dirtyPages].sort((a, b) => a - b);
    this.dirtyPages.clear();
    const writes: Promise<void>[] = [];
    let runStart = 0;
    for (let i = 1; i <= pages.length; i++) {
      if (i < pages.length && pages[i] === pages[i - 1]! + 1 && i - runStart < 256) continue;
      const first = pages[runStart]!;
      const count = pages[i - 1]! - first + 1;
      const offset = first * METADATA_PAGE_BYTES;
      // Copy: the mirror may be staged again while this write is in flight.
      const source = Buffer.from(this.mirror.subarray(offset, offset + count * METADATA_PAGE_BYTES));
      writes.push(this.device.write(source, this.superblockValue.metadataOffsetBytes + offset));
      runStart = i;
    }
    await Promise.all(writes);
    return pages.length;
  }

  /** Writes the superblock into copy (sequence mod 2). Does not flush. */
  async writeSuperblock(superblock: Superblock): Promise<void> {
    const copy = encodeSuperblock(superblock, this.superblockBuffer);
    await this.device.write(Buffer.from(this.superblockBuffer), superblockOffset(copy));
    this.superblockValue = superblock;
  }

  /** Writes the next superblock: `changes` applied and the sequence advanced. Does not flush. */
  async updateSuperblock(changes: Partial<Superblock>): Promise<Superblock> {
    const next = { ...this.superblockValue, ...changes, sequence: this.superblockValue.sequence + 1 };
    await this.writeSuperblock(next);
    return next;
  }
}

export function recordFlags(valid: boolean, dirty: boolean, hasCrc: boolean): number {
  return (valid ? RECORD_VALID : 0) | (dirty ? RECORD_DIRTY : 0) | (hasCrc ? RECORD_DATA_CRC : 0);
}
