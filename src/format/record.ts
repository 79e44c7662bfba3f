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
import { endianness } from 'node:os';
import { crc32cRange, crc32cWords } from '../stdx/checksum.js';
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

/** What `decodeRecordInto` found (no allocation: the fields go into a caller's record). */
export const RECORD_EMPTY = 0;
export const RECORD_FOUND = 1;
export const RECORD_CORRUPT_CHECKSUM = 2;
export const RECORD_CORRUPT_LOCATION = 3;
export const RECORD_CORRUPT_FLAGS = 4;
export const RECORD_CORRUPT_DIRTY_INVALID = 5;
export const RECORD_CORRUPT_RANGE = 6;
export type RecordStatus = 0 | 1 | 2 | 3 | 4 | 5 | 6;

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
  checkFields(record.originBlock, record.sequence, record.flags);
  target.writeUInt32LE(record.originBlock % 2 ** 32, offset);
  target.writeUInt32LE(Math.floor(record.originBlock / 2 ** 32), offset + 4);
  target.writeUInt32LE(record.sequence % 2 ** 32, offset + 8);
  target.writeUInt32LE(Math.floor(record.sequence / 2 ** 32), offset + 12);
  target.writeUInt32LE(record.dataCrc >>> 0, offset + 16);
  target.writeUInt16LE(record.flags, offset + 20);
  target.writeUInt16LE(0, offset + 22);
  target.writeUInt32LE(cacheBlock >>> 0, offset + 24);
  target.writeUInt32LE(crc32cRange(target, offset, 28, salt), offset + 28);
}

function checkFields(originBlock: number, sequence: number, flags: number): void {
  if ((flags & ~FLAGS_KNOWN) !== 0) assert(false, `unknown record flags ${flags}`);
  if ((flags & RECORD_DIRTY) !== 0 && (flags & RECORD_VALID) === 0) assert(false, 'dirty implies valid');
  if (!(Number.isSafeInteger(originBlock) && originBlock >= 0)) assert(false, `origin block ${originBlock} out of range`);
  if (!(Number.isSafeInteger(sequence) && sequence >= 0)) assert(false, `sequence ${sequence} out of range`);
}

/**
 * `encodeRecord` from the fields (no record object) into a 32-bit word view of
 * little-endian memory (RECORD_WORDS_NATIVE); `index` is the record's first
 * word. Same bytes as `encodeRecord`. A commit stages every changed record
 * this way (a flush of a full cache stages a million).
 */
export function encodeRecordWords(
  words: Int32Array, index: number, cacheBlock: number, salt: number,
  originBlock: number, sequence: number, dataCrc: number, flags: number,
): void {
  checkFields(originBlock, sequence, flags);
  words[index] = originBlock % 2 ** 32 | 0;
  words[index + 1] = Math.floor(originBlock / 2 ** 32);
  words[index + 2] = sequence % 2 ** 32 | 0;
  words[index + 3] = Math.floor(sequence / 2 ** 32);
  words[index + 4] = dataCrc | 0;
  words[index + 5] = flags; // the reserved upper half stays 0
  words[index + 6] = cacheBlock | 0;
  words[index + 7] = crc32cWords(words, index, 7, salt);
}

function u32(source: Uint8Array, at: number): number {
  return (source[at]! | (source[at + 1]! << 8) | (source[at + 2]! << 16) | (source[at + 3]! << 24)) >>> 0;
}

/**
 * Decodes the record at `offset` into `target` (written only when the result is
 * RECORD_FOUND) and validates it: checksum, self-location, flags, ranges. The
 * open path decodes a million records this way with no per-record allocation.
 */
export function decodeRecordInto(source: Uint8Array, offset: number, cacheBlock: number, salt: number, target: MetadataRecord): RecordStatus {
  assert(offset >= 0 && offset + RECORD_BYTES <= source.length, 'record outside the buffer');
  const checksum = u32(source, offset + 28);
  if (checksum === 0) {
    let any = 0;
    for (let at = offset; at < offset + 28; at += 4) any |= u32(source, at);
    if (any === 0) return RECORD_EMPTY;
  }
  if (crc32cRange(source, offset, 28, salt) !== checksum) return RECORD_CORRUPT_CHECKSUM;
  if (u32(source, offset + 24) !== cacheBlock >>> 0) return RECORD_CORRUPT_LOCATION;
  const flagsAndReserved = u32(source, offset + 20);
  const flags = flagsAndReserved & 0xffff;
  if ((flagsAndReserved & ~FLAGS_KNOWN) !== 0) return RECORD_CORRUPT_FLAGS;
  if ((flags & RECORD_DIRTY) !== 0 && (flags & RECORD_VALID) === 0) return RECORD_CORRUPT_DIRTY_INVALID;
  const originHigh = u32(source, offset + 4);
  const sequenceHigh = u32(source, offset + 12);
  if (originHigh >= 2 ** 21 || sequenceHigh >= 2 ** 21) return RECORD_CORRUPT_RANGE;
  target.originBlock = originHigh * 2 ** 32 + u32(source, offset);
  target.sequence = sequenceHigh * 2 ** 32 + u32(source, offset + 8);
  target.dataCrc = u32(source, offset + 16);
  target.flags = flags;
  return RECORD_FOUND;
}

/** True when a record can be decoded through a 32-bit word view of its buffer (`decodeRecordWords`). */
export const RECORD_WORDS_NATIVE = endianness() === 'LE';
/** A record is this many 32-bit words; its checksum covers all but the last. */
export const RECORD_WORDS = RECORD_BYTES / 4;

/**
 * `decodeRecordInto` over a 32-bit word view of little-endian memory (RECORD_WORDS_NATIVE):
 * the same checks and results with a quarter of the loads. `index` is the record's first word.
 */
export function decodeRecordWords(words: Int32Array, index: number, cacheBlock: number, salt: number, target: MetadataRecord): RecordStatus {
  // Signed comparisons throughout: int32 values never allocate, even in unoptimized code.
  const checksum = words[index + 7]!;
  if (checksum === 0 && (words[index]! | words[index + 1]! | words[index + 2]! | words[index + 3]! | words[index + 4]! | words[index + 5]! | words[index + 6]!) === 0) {
    return RECORD_EMPTY;
  }
  if (crc32cWords(words, index, 7, salt) !== checksum) return RECORD_CORRUPT_CHECKSUM;
  if (words[index + 6]! !== (cacheBlock | 0)) return RECORD_CORRUPT_LOCATION;
  const flagsAndReserved = words[index + 5]!;
  if ((flagsAndReserved & ~FLAGS_KNOWN) !== 0) return RECORD_CORRUPT_FLAGS;
  if ((flagsAndReserved & RECORD_DIRTY) !== 0 && (flagsAndReserved & RECORD_VALID) === 0) return RECORD_CORRUPT_DIRTY_INVALID;
  const originHigh = words[index + 1]! >>> 0;
  const sequenceHigh = words[index + 3]! >>> 0;
  if (originHigh >= 2 ** 21 || sequenceHigh >= 2 ** 21) return RECORD_CORRUPT_RANGE;
  target.originBlock = originHigh * 2 ** 32 + (words[index]! >>> 0);
  target.sequence = sequenceHigh * 2 ** 32 + (words[index + 2]! >>> 0);
  target.dataCrc = words[index + 4]! >>> 0;
  target.flags = flagsAndReserved;
  return RECORD_FOUND;
}

/** Why a record is corrupt, in words (`blockcache check`). */
export function corruptReason(status: RecordStatus, source: Uint8Array, offset: number, cacheBlock: number): string {
  switch (status) {
    case RECORD_CORRUPT_CHECKSUM: return 'checksum mismatch';
    case RECORD_CORRUPT_LOCATION: return `record of cache block ${u32(source, offset + 24)} found at ${cacheBlock}`;
    case RECORD_CORRUPT_FLAGS: return 'unknown flags';
    case RECORD_CORRUPT_DIRTY_INVALID: return 'dirty but not valid';
    case RECORD_CORRUPT_RANGE: return 'field out of range';
    default: return assertNever(status);
  }
}

function assertNever(status: RecordStatus): never {
  assert(false, `record status ${status} is not corrupt`);
}

/** The allocating form of `decodeRecordInto`, for tests and tools. */
export function decodeRecord(source: Uint8Array, offset: number, cacheBlock: number, salt: number): DecodedRecord {
  const record: MetadataRecord = { originBlock: 0, sequence: 0, dataCrc: 0, flags: 0 };
  const status = decodeRecordInto(source, offset, cacheBlock, salt, record);
  if (status === RECORD_EMPTY) return EMPTY;
  if (status !== RECORD_FOUND) return { kind: 'corrupt', reason: corruptReason(status, source, offset, cacheBlock) };
  return { kind: 'record', ...record };
}

/** The record-checksum salt of a cache: the first 4 bytes of its UUID. */
export function recordSalt(uuid: Buffer): number {
  return uuid.readUInt32LE(0);
}
