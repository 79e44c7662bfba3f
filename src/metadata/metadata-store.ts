// Persists the cache's mapping on the cache device: superblock copies and the
// metadata region. It writes only what the engine stages and never flushes on
// its own: the engine orders data writes, metadata writes and flushes (see
// docs/DURABILITY.md). Concurrency: one superblock write and one staged write-out
// at a time (the engine serialises commits; asserted).
//
// No copy of the record region is kept in memory. Staged records wait in
// whole-page patches (4 KiB per page with a staged record); a write-out reads
// each run of staged pages from the device (normally the kernel's page cache),
// lays the staged records over it and writes the run back. A page whose every
// record is staged is written without a read.
//
// A commit must not depend on reads of a failing cache device (degraded mode
// still commits: test/durability/test-device-errors). When a page cannot be
// read, its staged records are either deferred or the write-out fails:
// - a record staged as deferrable (the caller's promise: neither it nor the
//   record it replaces on disk says dirty) is left unwritten and handed back,
//   so the engine stages it again and meanwhile tells recovery not to trust
//   clean records (docs/DURABILITY.md, "Metadata pages that cannot be read");
// - any other record makes the write-out throw: dirty data must never depend
//   on a record that was not written.
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
 * a view of the chunk just read. `clear` stages an empty record for a block.
 */
export class RecordChunk {
  /** The same memory as 32-bit words, when records can be decoded that way (little-endian hosts). */
  private readonly words: Int32Array | undefined;

  constructor(
    readonly bytes: Buffer, readonly firstCacheBlock: number, readonly blockCount: number,
    private readonly salt: number, private readonly stageEmpty: (cacheBlock: number) => void,
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

  /** Makes `cacheBlock`'s record empty: in this chunk, and staged for the next `writeStaged` (not flushed). */
  clear(cacheBlock: number): void {
    const index = cacheBlock - this.firstCacheBlock;
    assert(index >= 0 && index < this.blockCount, 'record outside the chunk');
    this.bytes.fill(0, index * RECORD_BYTES, (index + 1) * RECORD_BYTES);
    this.stageEmpty(cacheBlock);
  }
}

export interface ScanOptions {
  /** Chunks start and end at multiples of this many records (pass assoc: a set is never split). */
  readonly blocksMultiple: number;
  readonly visit: (chunk: RecordChunk) => void;
  readonly progress?: (doneBlocks: number, totalBlocks: number) => void;
}

/** What `writeStaged` did. */
export interface StagedWriteOut {
  readonly pagesWritten: number;
  /** Cache blocks whose (deferrable) records were not written: their pages could not be read. */
  readonly deferredBlocks: readonly number[];
}

/** Bits per word of a page's record masks. */
const MASK_BITS = 32;
const MASK_WORDS = RECORDS_PER_PAGE / MASK_BITS;
const FULL_MASK = 0xffffffff | 0;

/** One metadata page's staged records: their bytes at their place in the page, and which they are. */
class PagePatch {
  readonly bytes = Buffer.alloc(METADATA_PAGE_BYTES);
  readonly words = RECORD_WORDS_NATIVE ? new Int32Array(this.bytes.buffer, this.bytes.byteOffset, METADATA_PAGE_BYTES >>> 2) : undefined;
  /** Bit r set: record r of the page is staged. */
  readonly staged = new Int32Array(MASK_WORDS);
  /** Bit r set: record r may not be deferred (see the file comment). */
  readonly required = new Int32Array(MASK_WORDS);

  mark(record: number, deferrable: boolean): void {
    const bit = 1 << (record % MASK_BITS);
    const word = (record / MASK_BITS) | 0;
    this.staged[word]! |= bit;
    if (!deferrable) this.required[word]! |= bit;
  }

  get complete(): boolean {
    for (let word = 0; word < MASK_WORDS; word++) if (this.staged[word] !== FULL_MASK) return false;
    return true;
  }

  get deferrable(): boolean {
    for (let word = 0; word < MASK_WORDS; word++) if (this.required[word] !== 0) return false;
    return true;
  }

  /** Lays the staged records over `page` (the page as read from the device). */
  applyTo(page: Buffer): void {
    for (let word = 0; word < MASK_WORDS; word++) {
      const mask = this.staged[word]!;
      if (mask === 0) continue;
      for (let bit = 0; bit < MASK_BITS; bit++) {
        if ((mask & (1 << bit)) === 0) continue;
        const at = (word * MASK_BITS + bit) * RECORD_BYTES;
        this.bytes.copy(page, at, at, at + RECORD_BYTES);
      }
    }
  }

  /** The cache blocks of the staged records, for a page whose first record is `firstBlock`. */
  stagedBlocks(firstBlock: number, into: number[]): void {
    for (let record = 0; record < RECORDS_PER_PAGE; record++) {
      if ((this.staged[(record / MASK_BITS) | 0]! & (1 << (record % MASK_BITS))) !== 0) into.push(firstBlock + record);
    }
  }
}

export class MetadataStore {
  /** Staged records by metadata page. */
  private patches = new Map<number, PagePatch>();
  private readonly salt: number;
  private superblockValue: Superblock;
  private readonly superblockBuffer = Buffer.alloc(SUPERBLOCK_BYTES);
  private readonly regionBytes: number;
  private writingStaged = false;

  private constructor(private readonly device: BlockDevice, superblock: Superblock) {
    this.superblockValue = superblock;
    this.salt = recordSalt(superblock.uuid);
    this.regionBytes = metadataBytesFor(superblock.cacheBlocks);
    assert(superblock.metadataOffsetBytes + this.regionBytes <= superblock.dataOffsetBytes, 'metadata region overlaps the data');
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

  /** Opens the store of an existing cache. Reads nothing yet. */
  static open(device: BlockDevice, superblock: Superblock): MetadataStore {
    return new MetadataStore(device, superblock);
  }

  /**
   * Reads the whole record region a chunk at a time (the next chunk is read while `visit`
   * decodes one; two chunk buffers in turn), once, in order. Records the visit clears are staged.
   */
  async scan(options: ScanOptions): Promise<void> {
    assert(!this.writingStaged, 'scan during a staged write-out');
    const cacheBlocks = this.superblockValue.cacheBlocks;
    const unit = Math.min(cacheBlocks, leastCommonMultiple(options.blocksMultiple, RECORDS_PER_PAGE));
    const chunkBlocks = Math.max(unit, Math.floor(METADATA_SCAN_CHUNK_BYTES / RECORD_BYTES / unit) * unit);
    const chunkCount = Math.ceil(cacheBlocks / chunkBlocks);
    const buffers = [0, 1].map(() => Buffer.alloc(Math.min(this.regionBytes, roundUpToPage(chunkBlocks * RECORD_BYTES))));
    const stageEmpty = (cacheBlock: number) => this.stageEmpty(cacheBlock);
    const readChunk = async (index: number): Promise<RecordChunk> => {
      const first = index * chunkBlocks;
      assert(first % RECORDS_PER_PAGE === 0, 'chunks start at a page');
      const count = Math.min(chunkBlocks, cacheBlocks - first);
      // Chunk i is visited while chunk i + 1 is read, so chunk i + 2 may reuse chunk i's buffer.
      const bytes = buffers[index % 2]!.subarray(0, roundUpToPage(count * RECORD_BYTES));
      await this.device.read(bytes, this.regionOffset(first));
      return new RecordChunk(bytes, first, count, this.salt, stageEmpty);
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

  /** The patch of `cacheBlock`'s page (created on first use). */
  private patchFor(cacheBlock: number): PagePatch {
    if (!(Number.isInteger(cacheBlock) && cacheBlock >= 0 && cacheBlock < this.superblockValue.cacheBlocks)) assert(false, `staging a record outside the cache: ${cacheBlock}`);
    const page = Math.floor(cacheBlock / RECORDS_PER_PAGE);
    let patch = this.patches.get(page);
    if (patch === undefined) {
      patch = new PagePatch();
      this.patches.set(page, patch);
    }
    return patch;
  }

  /** Stages a record for the next `writeStaged` (never deferred). */
  stage(cacheBlock: number, record: MetadataRecord): void {
    const patch = this.patchFor(cacheBlock);
    const index = cacheBlock % RECORDS_PER_PAGE;
    encodeRecord(record, cacheBlock, this.salt, patch.bytes, index * RECORD_BYTES);
    patch.mark(index, false);
  }

  /**
   * Stages a record given by its fields (as `stage`, without a record object: the commit path).
   * `deferrable`: neither this record nor the one it replaces on disk says dirty, so it may be
   * left unwritten if its page cannot be read (see the file comment).
   */
  stageFields(cacheBlock: number, originBlock: number, sequence: number, dataCrc: number, flags: number, deferrable = false): void {
    assert(!deferrable || (flags & RECORD_DIRTY) === 0, 'a dirty record is never deferrable');
    const patch = this.patchFor(cacheBlock);
    const index = cacheBlock % RECORDS_PER_PAGE;
    if (patch.words) encodeRecordWords(patch.words, index * RECORD_WORDS, cacheBlock, this.salt, originBlock, sequence, dataCrc, flags);
    else encodeRecord({ originBlock, sequence, dataCrc, flags }, cacheBlock, this.salt, patch.bytes, index * RECORD_BYTES);
    patch.mark(index, deferrable);
  }

  /** Stages an all-zero (empty) record (never deferred). */
  stageEmpty(cacheBlock: number): void {
    const patch = this.patchFor(cacheBlock);
    const index = cacheBlock % RECORDS_PER_PAGE;
    patch.bytes.fill(0, index * RECORD_BYTES, (index + 1) * RECORD_BYTES);
    patch.mark(index, false);
  }

  get stagedPages(): number {
    return this.patches.size;
  }

  /**
   * Writes every staged page: runs of contiguous pages, each read, patched and written back
   * (pages whose records are all staged are not read). Does not flush. Throws if a page
   * could not be written, or could not be read and holds a record that may not be deferred;
   * either way the staged records are forgotten (the engine stages them again).
   */
  async writeStaged(): Promise<StagedWriteOut> {
    assert(!this.writingStaged, 'two staged write-outs at once');
    const patches = this.patches;
    this.patches = new Map();
    const pages = [...patches.keys()].sort((a, b) => a - b);
    this.writingStaged = true;
    try {
      const runs: Promise<number[]>[] = [];
      let runStart = 0;
      for (let i = 1; i <= pages.length; i++) {
        if (i < pages.length && pages[i] === pages[i - 1]! + 1 && i - runStart < METADATA_WRITE_RUN_PAGES_MAX) continue;
        runs.push(this.writeRun(pages[runStart]!, pages.slice(runStart, i).map((page) => patches.get(page)!)));
        runStart = i;
      }
      // Every run settles before the write-out ends: the next one may touch the same pages.
      const results = await Promise.allSettled(runs);
      const failed = results.find((result) => result.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const deferredBlocks = results.flatMap((result) => (result as PromiseFulfilledResult<number[]>).value);
      return { pagesWritten: pages.length - deferredPages(deferredBlocks), deferredBlocks };
    } finally {
      this.writingStaged = false;
    }
  }

  /** Reads, patches and writes pages [firstPage, firstPage + patches.length); returns the deferred blocks. */
  private async writeRun(firstPage: number, patches: PagePatch[]): Promise<number[]> {
    const buffer = Buffer.allocUnsafe(patches.length * METADATA_PAGE_BYTES);
    const offset = this.superblockValue.metadataOffsetBytes + firstPage * METADATA_PAGE_BYTES;
    if (patches.every((patch) => patch.complete)) {
      patches.forEach((patch, i) => patch.bytes.copy(buffer, i * METADATA_PAGE_BYTES));
      await this.device.write(buffer, offset);
      return [];
    }
    try {
      await this.device.read(buffer, offset);
    } catch {
      return this.writePagesAlone(firstPage, patches);
    }
    patches.forEach((patch, i) => patch.applyTo(buffer.subarray(i * METADATA_PAGE_BYTES, (i + 1) * METADATA_PAGE_BYTES)));
    await this.device.write(buffer, offset);
    return [];
  }

  /** After a run could not be read: each page on its own, deferring the records of pages still unreadable. */
  private async writePagesAlone(firstPage: number, patches: PagePatch[]): Promise<number[]> {
    const deferred: number[] = [];
    for (let i = 0; i < patches.length; i++) {
      const patch = patches[i]!;
      const page = Buffer.allocUnsafe(METADATA_PAGE_BYTES);
      const offset = this.superblockValue.metadataOffsetBytes + (firstPage + i) * METADATA_PAGE_BYTES;
      if (!patch.complete) {
        try {
          await this.device.read(page, offset);
        } catch (error) {
          if (!patch.deferrable) throw error;
          patch.stagedBlocks((firstPage + i) * RECORDS_PER_PAGE, deferred);
          continue;
        }
      }
      patch.applyTo(page);
      await this.device.write(page, offset);
    }
    return deferred;
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

/** How many distinct pages the (page-ordered) deferred blocks lie in. */
function deferredPages(blocks: readonly number[]): number {
  let pages = 0;
  let last = -1;
  for (const block of blocks) {
    const page = Math.floor(block / RECORDS_PER_PAGE);
    if (page !== last) pages++;
    last = page;
  }
  return pages;
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
