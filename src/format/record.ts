// Metadata records: one 32-byte record per cache block. Pure; no I/O.
//
//   0  u64 originBlock      8  u64 sequence (the commit that wrote it)
//   16 u32 dataCrc          20 u16 flags (VALID=1, DIRTY=2, DATA_CRC=4)
//   22 u16 reserved = 0     24 u32 cacheBlock (self-location)
//   28 u32 CRC-32C of bytes 0..27
//
// An all-zero record is EMPTY (a never-written slot). A record is sector-sized
// friendly: 16 records per 512-byte sector, so a torn page write leaves every
// record either wholly old or wholly new (sectors are atomic).
// The record checksum is seeded with a salt derived from the cache UUID.
import { crc32c } from '../stdx/checksum.js';
import { assert } from '../stdx/assert.js';
import { RECORD_BYTES } from './layout.js';

export const RECORD_VALID = 1;
export const RECORD_DIRTY = 2;
export const RECORD_DATA_CRC = 4;
const FLAGS_KNOWN = RECORD_VALID | RECORD_DIRTY | RECORD_DATA_CRC;

export interface MetadataRecord {
  originBlock: number;
  sequence: number;
  dataCrc: number;
  flags: number;
}

export type DecodedRecord =
  | { readonly kind: 'empty' }
  | { readonly kind: 'corrupt'; readonly reason: string }
  | ({ readonly kind: 'record' } & Readonly<MetadataRecord>);

const EMPTY: DecodedRecord = { kind: 'empty' };

/**
 * `salt` (from the cache's UUID) seeds the record checksum, so records left by
 * an earlier cache on the same device never validate in a new one.
 */
export function encodeRecord(record: MetadataRecord, cacheBlock: number, salt: number, target: Buffer, offset: number): void {
  assert((record.flags & ~FLAGS_KNOWN) === 0, 'unknown record flags');
  assert((record.flags & RECORD_DIRTY) === 0 || (record.flags & RECORD_VALID) !== 0, 'dirty implies valid');
  assert(Number.isSafeInteger(record.originBlock) && record.originBlock >= 0);
  assert(Number.isSafeInteger(record.sequence) && record.sequence >= 0);
  target.writeUInt32LE(record.originBlock % 2 ** 32, offset);
  target.writeUInt32LE(Math.floor(record.originBlock / 2 ** 32), offset + 4);
  target.writeUInt32LE(record.sequence % 2 ** 32, offset + 8);
  target.writeUInt32LE(Math.floor(record.sequence / 2 ** 32), offset + 12);
  target.writeUInt32LE(record.dataCrc >>> 0, offset + 16);
  target.writeUInt16LE(record.flags, offset + 20);
  target.writeUInt16LE(0, offset + 22);
  target.writeUInt32LE(cacheBlock >>> 0, offset + 24);
  target.writeUInt32LE(crc32c(target.subarray(offset, offset + 28), salt), offset + 28);
}

function isAllZero(source: Buffer, offset: number): boolean {
  for (let i = offset; i < offset + RECORD_BYTES; i += 4) if (source.readUInt32LE(i) !== 0) return false;
  return true;
}

export function decodeRecord(source: Buffer, offset: number, cacheBlock: number, salt: number): DecodedRecord {
  if (isAllZero(source, offset)) return EMPTY;
  if (crc32c(source.subarray(offset, offset + 28), salt) !== source.readUInt32LE(offset + 28)) {
    return { kind: 'corrupt', reason: 'checksum mismatch' };
  }
  if (source.readUInt32LE(offset + 24) !== cacheBlock >>> 0) {
    return { kind: 'corrupt', reason: `record of cache block ${source.readUInt32LE(offset + 24)} found at ${cacheBlock}` };
  }
  const flags = source.readUInt16LE(offset + 20);
  const originHigh = source.readUInt32LE(offset + 4);
  const sequenceHigh = source.readUInt32LE(offset + 12);
  if ((flags & ~FLAGS_KNOWN) !== 0 || source.readUInt16LE(offset + 22) !== 0) return { kind: 'corrupt', reason: 'unknown flags' };
  if ((flags & RECORD_DIRTY) !== 0 && (flags & RECORD_VALID) === 0) return { kind: 'corrupt', reason: 'dirty but not valid' };
  if (originHigh >= 2 ** 21 || sequenceHigh >= 2 ** 21) return { kind: 'corrupt', reason: 'field out of range' };
  return {
    kind: 'record',
    originBlock: originHigh * 2 ** 32 + source.readUInt32LE(offset),
    sequence: sequenceHigh * 2 ** 32 + source.readUInt32LE(offset + 8),
    dataCrc: source.readUInt32LE(offset + 16),
    flags,
  };
}

/** The record-checksum salt of a cache: the first 4 bytes of its UUID. */
export function recordSalt(uuid: Buffer): number {
  return uuid.readUInt32LE(0);
}
