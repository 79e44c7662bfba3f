// Persists the cache's mapping on the cache device: superblock copies and the
// metadata region. It writes only what the engine stages and never flushes on
// its own: the engine orders data writes, metadata writes and flushes (see
// docs/DURABILITY.md). Concurrency: one superblock write and one staged write-out
// at a time (the engine serialises commits; asserted).
//
// The store keeps a mirror of the metadata region in memory (32 bytes per cache
// block), so a commit writes whole 4 KiB pages without reading them first: a
// commit must not depend on reads of the cache device, which may be failing
// (degraded mode still commits; test/durability/test-device-errors). The mirror
// is filled by `scan`, which reads the region in chunks straight into it while
// the previous chunk is decoded (no other buffer).
import { randomBytes } from 'node:crypto';
import { BlockDevice } from '../devices/block-device.js';
import {
  METADATA_PAGE_BYTES, RECORD_BYTES, RECORDS_PER_PAGE, SUPERBLOCK_BYTES, SUPERBLOCK_COPIES, superblockOffset, metadataBytesFor, Layout,
} from '../format/layout.js';
import {
  MetadataRecord, RecordStatus, corruptReason, decodeRecordInto, decodeRecordWords, encodeRecord, encodeRecordWords, recordSalt,
  RECORD_DIRTY, RECORD_VALID, RECORD_DATA_CRC, RECORD_WORDS, RECORD_WORDS_NATIVE,
} from '../format/record.js';
import { Superblock, chooseSuperblock, encodeSuperblock } from '../format/superblock.js';
import { BlockcacheError } from '../stdx/errors.js';
import { assert } from '../stdx/assert.js';
import { METADATA_SCAN_CHUNK_BYTES, METADATA_WRITE_RUN_PAGES_MAX } from '../constants.js';

/** Compared against to skip runs of empty records without decoding them. */
const ZERO_PAGE = Buffer.alloc(METADATA_PAGE_BYTES);

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

/**
 * The records of cache blocks [firstCacheBlock, firstCacheBlock + blockCount) during a `scan`:
 * a view of the store's mirror. `clear` makes a record empty in the mirror and stages its page.
 */
export class RecordChunk {
  /** The same memory as 32-bit words, when records can be decoded that way (little-endian hosts). */
  private readonly words: Int32Array | undefined;

  constructor(
    readonly bytes: Buffer, readonly firstCacheBlock: number, readonly blockCount: number,
    private readonly salt: number, private readonly stagePage: (page: number) => void,
  ) {
    assert(bytes.byteOffset % 4 === 0 && bytes.length >= blockCount * RECORD_BYTES);
    this.words = RECORD_WORDS_NATIVE ? new Int32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.length / 4)) : undefined;
  }

  /** Decodes `cacheBlock`'s record into `into` (only when RECORD_FOUND). */
  decode(cacheBlock: number, into: MetadataRecord): RecordStatus {
    const index = cacheBlock - this.firstCacheBlock;
    assert(index >= 0 && index < this.blockCount, 'record outside the chunk');
    if (this.words !== undefined) return decodeRecordWords(this.words, index * RECORD_WORDS, cacheBlock, this.salt, into);
    return decodeRecordInto(this.bytes, index * RECORD_BYTES, cacheBlock, this.salt, into);
  }

  /** True when the records of [cacheBlock, cacheBlock + count) are all empty (one memcmp per page). */
  allEmpty(cacheBlock: number, count: number): boolean {
    const index = cacheBlock - this.firstCacheBlock;
    assert(index >= 0 && count >= 0 && index + count <= this.blockCount, 'records outside the chunk');
    const end = (index + count) * RECORD_BYTES;
    for (let at = index * RECORD_BYTES; at < end; at += METADATA_PAGE_BYTES) {
      const length = Math.min(METADATA_PAGE_BYTES, end - at);
      if (this.bytes.compare(ZERO_PAGE, 0, length, at, at + length) !== 0) return false;
    }
    return true;
  }

  corruptReason(status: RecordStatus, cacheBlock: number): string {
    return corruptReason(status, this.bytes, (cacheBlock - this.firstCacheBlock) * RECORD_BYTES, cacheBlock);
  }

  /** Makes `cacheBlock`'s record empty; written by the next `writeStaged` (not flushed). */
  clear(cacheBlock: number): void {
    const index = cacheBlock - this.firstCacheBlock;
    assert(index >= 0 && index < this.blockCount, 'record outside the chunk');
    this.bytes.fill(0, index * RECORD_BYTES, (index + 1) * RECORD_BYTES);
    this.stagePage(Math.floor(cacheBlock / RECORDS_PER_PAGE));
  }
}

export interface ScanOptions {
  /** Chunks start and end at multiples of this many records (pass assoc: a set is never split). */
  readonly blocksMultiple: number;
  readonly visit: (chunk: RecordChunk) => void;
  readonly progress?: (doneBlocks: number, totalBlocks: number) => void;
}

export class MetadataStore {
  private readonly mirror: Buffer;
  /** The mirror as 32-bit words, when records can be encoded through them (RECORD_WORDS_NATIVE). */
  private readonly mirrorWords: Int32Array | undefined;
  private readonly dirtyPages = new Set<number>();
  private readonly salt: number;
  private superblockValue: Superblock;
  private readonly superblockBuffer = Buffer.alloc(SUPERBLOCK_BYTES);
  private writingStaged = false;

  private constructor(private readonly device: BlockDevice, superblock: Superblock) {
    this.superblockValue = superblock;
    this.salt = recordSalt(superblock.uuid);
    this.mirror = Buffer.alloc(metadataBytesFor(superblock.cacheBlocks));
    this.mirrorWords = RECORD_WORDS_NATIVE ? new Int32Array(this.mirror.buffer, this.mirror.byteOffset, this.mirror.length >>> 2) : undefined;
    assert(superblock.metadataOffsetBytes + this.mirror.length <= superblock.dataOffsetBytes, 'metadata region overlaps the data');
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
    const regionBytes = superblock.dataOffsetBytes - superblock.metadataOffsetBytes;
    const zeroes = Buffer.alloc(Math.min(METADATA_SCAN_CHUNK_BYTES, regionBytes));
    for (let offset = 0; offset < regionBytes; offset += zeroes.length) {
      const length = Math.min(zeroes.length, regionBytes - offset);
      await device.write(zeroes.subarray(0, length), layout.metadataOffsetBytes + offset);
    }
    await device.flush();
    await store.writeSuperblock({ ...superblock, sequence: 0 });
    await store.writeSuperblock({ ...superblock, sequence: 1 });
    await device.flush();
    return store;
  }

  /** Opens the store of an existing cache. Reads nothing yet: `scan` fills the mirror. */
  static open(device: BlockDevice, superblock: Superblock): MetadataStore {
    return new MetadataStore(device, superblock);
  }

  /**
   * Reads the whole record region into the mirror, a chunk at a time (the next chunk is read
   * while `visit` decodes one), once, in order. Records the visit clears are staged.
   */
  async scan(options: ScanOptions): Promise<void> {
    assert(!this.writingStaged, 'scan during a staged write-out');
    const cacheBlocks = this.superblockValue.cacheBlocks;
    const unit = Math.min(cacheBlocks, leastCommonMultiple(options.blocksMultiple, RECORDS_PER_PAGE));
    const chunkBlocks = Math.max(unit, Math.floor(METADATA_SCAN_CHUNK_BYTES / RECORD_BYTES / unit) * unit);
    const chunkCount = Math.ceil(cacheBlocks / chunkBlocks);
    const stagePage = (page: number) => this.dirtyPages.add(page);
    const readChunk = async (index: number): Promise<RecordChunk> => {
      const first = index * chunkBlocks;
      assert(first % RECORDS_PER_PAGE === 0, 'chunks start at a page');
      const count = Math.min(chunkBlocks, cacheBlocks - first);
      const bytes = this.mirror.subarray(first * RECORD_BYTES, first * RECORD_BYTES + roundUpToPage(count * RECORD_BYTES));
      await this.device.read(bytes, this.regionOffset(first));
      return new RecordChunk(bytes, first, count, this.salt, stagePage);
    };
    let reading = readChunk(0);
    try {
      for (let index = 0; index < chunkCount; index++) {
        const chunk = await reading;
        if (index + 1 < chunkCount) {
          reading = readChunk(index + 1);
          reading.catch(() => {}); // awaited on the next turn; only silenced if the visit throws first
        }
        options.visit(chunk);
        options.progress?.(chunk.firstCacheBlock + chunk.blockCount, cacheBlocks);
      }
    } finally {
      await Promise.allSettled([reading]);
    }
  }

  /** Device offset of `cacheBlock`'s record. */
  private regionOffset(cacheBlock: number): number {
    return this.superblockValue.metadataOffsetBytes + cacheBlock * RECORD_BYTES;
  }

  /** Stages a record for the next `writeStaged`. */
  stage(cacheBlock: number, record: MetadataRecord): void {
    this.checkBlock(cacheBlock);
    encodeRecord(record, cacheBlock, this.salt, this.mirror, cacheBlock * RECORD_BYTES);
    this.dirtyPages.add(Math.floor(cacheBlock / RECORDS_PER_PAGE));
  }

  /** Stages a record given by its fields (as `stage`, without a record object: the commit path). */
  stageFields(cacheBlock: number, originBlock: number, sequence: number, dataCrc: number, flags: number): void {
    this.checkBlock(cacheBlock);
    if (this.mirrorWords) encodeRecordWords(this.mirrorWords, cacheBlock * RECORD_WORDS, cacheBlock, this.salt, originBlock, sequence, dataCrc, flags);
    else encodeRecord({ originBlock, sequence, dataCrc, flags }, cacheBlock, this.salt, this.mirror, cacheBlock * RECORD_BYTES);
    this.dirtyPages.add(Math.floor(cacheBlock / RECORDS_PER_PAGE));
  }

  /** Stages an all-zero (empty) record. */
  stageEmpty(cacheBlock: number): void {
    this.checkBlock(cacheBlock);
    this.mirror.fill(0, cacheBlock * RECORD_BYTES, (cacheBlock + 1) * RECORD_BYTES);
    this.dirtyPages.add(Math.floor(cacheBlock / RECORDS_PER_PAGE));
  }

  private checkBlock(cacheBlock: number): void {
    if (!(Number.isInteger(cacheBlock) && cacheBlock >= 0 && cacheBlock < this.superblockValue.cacheBlocks)) assert(false, `staging a record outside the cache: ${cacheBlock}`);
  }

  get stagedPages(): number {
    return this.dirtyPages.size;
  }

  /** Writes every staged page (contiguous pages in one write). Does not flush. */
  async writeStaged(): Promise<number> {
    assert(!this.writingStaged, 'two staged write-outs at once');
    const pages = [...this.dirtyPages].sort((a, b) => a - b);
    this.dirtyPages.clear();
    this.writingStaged = true;
    try {
      const writes: Promise<void>[] = [];
      let runStart = 0;
      for (let i = 1; i <= pages.length; i++) {
        if (i < pages.length && pages[i] === pages[i - 1]! + 1 && i - runStart < METADATA_WRITE_RUN_PAGES_MAX) continue;
        const first = pages[runStart]!;
        const count = pages[i - 1]! - first + 1;
        const offset = first * METADATA_PAGE_BYTES;
        // Copy: the mirror may be staged again while this write is in flight.
        const source = Buffer.from(this.mirror.subarray(offset, offset + count * METADATA_PAGE_BYTES));
        writes.push(this.device.write(source, this.superblockValue.metadataOffsetBytes + offset));
        runStart = i;
      }
      await Promise.all(writes);
    } finally {
      this.writingStaged = false;
    }
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

function roundUpToPage(bytes: number): number {
  return Math.ceil(bytes / METADATA_PAGE_BYTES) * METADATA_PAGE_BYTES;
}

function leastCommonMultiple(a: number, b: number): number {
  assert(Number.isSafeInteger(a) && a > 0 && Number.isSafeInteger(b) && b > 0);
  let x = a;
  let y = b;
  while (y !== 0) [x, y] = [y, x % y];
  return (a / x) * b;
}

export function recordFlags(valid: boolean, dirty: boolean, hasCrc: boolean): number {
  return (valid ? RECORD_VALID : 0) | (dirty ? RECORD_DIRTY : 0) | (hasCrc ? RECORD_DATA_CRC : 0);
}
