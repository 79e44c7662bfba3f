// Where things live on a cache device: two superblock copies, the metadata
// region (one 32-byte record per cache block), then the data region aligned to
// the block size. Pure; see docs/ON_DISK_FORMAT.md.
import { BLOCK_BYTES_MAX, BLOCK_BYTES_MIN, CACHE_BLOCKS_MAX } from '../constants.js';
import { assert, isPowerOfTwo } from '../stdx/assert.js';
import { BlockcacheError } from '../stdx/errors.js';

export const SUPERBLOCK_BYTES = 4096;
export const SUPERBLOCK_COPIES = 2;
export const RECORD_BYTES = 32;
/** Metadata is read and written in pages of this size (128 records). */
export const METADATA_PAGE_BYTES = 4096;
export const RECORDS_PER_PAGE = METADATA_PAGE_BYTES / RECORD_BYTES;
export const METADATA_OFFSET_BYTES = SUPERBLOCK_BYTES * SUPERBLOCK_COPIES;

export interface Layout {
  readonly blockBytes: number;
  /** Blocks per set; equal to cacheBlocks when fully associative. */
  readonly assoc: number;
  readonly cacheBlocks: number;
  readonly metadataOffsetBytes: number;
  readonly metadataBytes: number;
  readonly dataOffsetBytes: number;
}

export function superblockOffset(copy: number): number {
  assert(copy >= 0 && copy < SUPERBLOCK_COPIES);
  return copy * SUPERBLOCK_BYTES;
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

export function metadataBytesFor(cacheBlocks: number): number {
  return roundUp(cacheBlocks * RECORD_BYTES, METADATA_PAGE_BYTES);
}

export function dataOffsetFor(cacheBlocks: number, blockBytes: number): number {
  return roundUp(METADATA_OFFSET_BYTES + metadataBytesFor(cacheBlocks), blockBytes);
}

/**
 * The largest layout that fits a device: as many cache blocks as fit after the
 * headers, rounded down to a whole number of sets. `assoc` = 'full' gives one set.
 */
export function computeLayout(deviceBytes: number, blockBytes: number, assoc: number | 'full'): Layout {
  if (!isPowerOfTwo(blockBytes) || blockBytes < BLOCK_BYTES_MIN || blockBytes > BLOCK_BYTES_MAX) {
    throw new BlockcacheError('BAD_ARGUMENT', `block size must be a power of two from ${BLOCK_BYTES_MIN / 1024}K to ${BLOCK_BYTES_MAX / 1024 / 1024}M, not ${blockBytes}`);
  }
  if (assoc !== 'full' && !isPowerOfTwo(assoc)) {
    throw new BlockcacheError('BAD_ARGUMENT', `assoc must be a power of two or 'full', not ${assoc}`);
  }
  let cacheBlocks = Math.floor((deviceBytes - METADATA_OFFSET_BYTES) / (blockBytes + RECORD_BYTES));
  cacheBlocks = Math.min(cacheBlocks, CACHE_BLOCKS_MAX);
  while (cacheBlocks > 0 && dataOffsetFor(cacheBlocks, blockBytes) + cacheBlocks * blockBytes > deviceBytes) cacheBlocks--;
  if (assoc !== 'full') cacheBlocks -= cacheBlocks % assoc;
  if (cacheBlocks <= 0) {
    const need = assoc === 'full' ? 1 : assoc;
    throw new BlockcacheError('BAD_ARGUMENT',
      `cache device of ${deviceBytes} bytes is too small: it must hold at least ${need} blocks of ${blockBytes} bytes plus metadata`);
  }
  const layout = {
    blockBytes,
    assoc: assoc === 'full' ? cacheBlocks : assoc,
    cacheBlocks,
    metadataOffsetBytes: METADATA_OFFSET_BYTES,
    metadataBytes: metadataBytesFor(cacheBlocks),
    dataOffsetBytes: dataOffsetFor(cacheBlocks, blockBytes),
  };
  assert(layout.dataOffsetBytes + cacheBlocks * blockBytes <= deviceBytes);
  return layout;
}
