// Superblock: encode, decode, validate. Pure; no I/O.
//
// Two copies live at offsets 0 and 4096. Each write goes to copy
// (sequence mod 2), so a torn superblock write always leaves the previous copy
// intact; readers take the valid copy with the highest sequence. Every field is
// little-endian; the last 4 bytes are the CRC-32C of the rest.
import { crc32c } from '../stdx/checksum.js';
import { assert } from '../stdx/assert.js';
import { BlockcacheError } from '../stdx/errors.js';
import { SUPERBLOCK_BYTES, SUPERBLOCK_COPIES } from './layout.js';

export const SUPERBLOCK_MAGIC = 'BLKCACHE';
export const FORMAT_VERSION = 1;
/** Incompatible feature bits this version understands (none yet). */
export const FEATURES_KNOWN = 0;
export const POLICY_NAME_BYTES = 32;
export const ORIGIN_NAME_BYTES = 512;
export const UUID_BYTES = 16;

export type CacheMode = 'writeback' | 'writethrough' | 'writearound';
export const CACHE_MODES: readonly CacheMode[] = ['writeback', 'writethrough', 'writearound'];

export interface OriginIdentity {
  readonly sizeBytes: number;
  /** Path or URI the origin was opened by (informational; relocation allowed). */
  readonly name: string;
  /** st_dev and st_ino for files and block devices; 0 for NBD origins. */
  readonly deviceId: number;
  readonly inode: number;
  /** CRC-32C over sampled origin regions as blockcache last left them. */
  readonly fingerprint: number;
  /** False once blockcache may have changed a sampled region since `fingerprint` was taken. */
  readonly fingerprintValid: boolean;
}

export interface Superblock {
  readonly uuid: Buffer;
  readonly sequence: number;
  /** Highest metadata commit sequence written so far. */
  readonly commitSequence: number;
  readonly blockBytes: number;
  readonly assoc: number;
  readonly assocFull: boolean;
  readonly cacheBlocks: number;
  readonly metadataOffsetBytes: number;
  readonly dataOffsetBytes: number;
  readonly cacheDeviceBytes: number;
  readonly mode: CacheMode;
  readonly policy: string;
  readonly cleanShutdown: boolean;
  /**
   * Origin writes may have happened since the last commit, so a clean cached
   * copy may differ from the origin after a crash (set before such writes).
   */
  readonly originWritesUncommitted: boolean;
  readonly origin: OriginIdentity;
}

const OFFSET = {
  magic: 0, version: 8, features: 12, copyIndex: 16, originWritesUncommitted: 20, uuid: 24, sequence: 40, commitSequence: 48,
  blockBytes: 56, assoc: 60, assocFull: 64, mode: 65, cleanShutdown: 66, fingerprintValid: 67,
  fingerprint: 68, cacheBlocks: 72, metadataOffset: 80, dataOffset: 88, cacheDeviceBytes: 96,
  originBytes: 104, originDeviceId: 112, originInode: 120, policy: 128, originName: 160,
  crc: SUPERBLOCK_BYTES - 4,
} as const;
assert(OFFSET.originName + ORIGIN_NAME_BYTES <= OFFSET.crc, 'superblock fields overlap the checksum');
assert(OFFSET.policy + POLICY_NAME_BYTES <= OFFSET.originName);

function writeU64(target: Buffer, offset: number, value: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, `u64 field out of range: ${value}`);
  target.writeUInt32LE(value % 2 ** 32, offset);
  target.writeUInt32LE(Math.floor(value / 2 ** 32), offset + 4);
}

function readU64(source: Buffer, offset: number): number {
  const high = source.readUInt32LE(offset + 4);
  if (high >= 2 ** 21) throw new BlockcacheError('CORRUPT', `64-bit field at ${offset} is out of range`);
  return high * 2 ** 32 + source.readUInt32LE(offset);
}

function writeString(target: Buffer, offset: number, size: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  assert(bytes.length <= size, `string too long for a ${size}-byte field`);
  target.fill(0, offset, offset + size);
  bytes.copy(target, offset);
}

function readString(source: Buffer, offset: number, size: number): string {
  const field = source.subarray(offset, offset + size);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? size : end).toString('utf8');
}

/** Truncates a name (at a character boundary) to fit a fixed field. */
export function fitName(value: string, size = ORIGIN_NAME_BYTES): string {
  let result = value;
  while (Buffer.byteLength(result, 'utf8') > size) result = result.slice(0, -1);
  return result;
}

export function encodeSuperblock(superblock: Superblock, target: Buffer): number {
  assert(target.length === SUPERBLOCK_BYTES);
  assert(superblock.uuid.length === UUID_BYTES);
  assert(superblock.cacheBlocks > 0 && superblock.cacheBlocks % superblock.assoc === 0);
  const copy = superblock.sequence % SUPERBLOCK_COPIES;
  target.fill(0);
  target.write(SUPERBLOCK_MAGIC, OFFSET.magic, 'ascii');
  target.writeUInt32LE(FORMAT_VERSION, OFFSET.version);
  target.writeUInt32LE(FEATURES_KNOWN, OFFSET.features);
  target.writeUInt32LE(copy, OFFSET.copyIndex);
  superblock.uuid.copy(target, OFFSET.uuid);
  writeU64(target, OFFSET.sequence, superblock.sequence);
  writeU64(target, OFFSET.commitSequence, superblock.commitSequence);
  target.writeUInt32LE(superblock.blockBytes, OFFSET.blockBytes);
  target.writeUInt32LE(superblock.assoc, OFFSET.assoc);
  target.writeUInt8(superblock.assocFull ? 1 : 0, OFFSET.assocFull);
  target.writeUInt8(CACHE_MODES.indexOf(superblock.mode), OFFSET.mode);
  target.writeUInt8(superblock.cleanShutdown ? 1 : 0, OFFSET.cleanShutdown);
  target.writeUInt8(superblock.originWritesUncommitted ? 1 : 0, OFFSET.originWritesUncommitted);
  target.writeUInt8(superblock.origin.fingerprintValid ? 1 : 0, OFFSET.fingerprintValid);
  target.writeUInt32LE(superblock.origin.fingerprint >>> 0, OFFSET.fingerprint);
  writeU64(target, OFFSET.cacheBlocks, superblock.cacheBlocks);
  writeU64(target, OFFSET.metadataOffset, superblock.metadataOffsetBytes);
  writeU64(target, OFFSET.dataOffset, superblock.dataOffsetBytes);
  writeU64(target, OFFSET.cacheDeviceBytes, superblock.cacheDeviceBytes);
  writeU64(target, OFFSET.originBytes, superblock.origin.sizeBytes);
  writeU64(target, OFFSET.originDeviceId, superblock.origin.deviceId);
  writeU64(target, OFFSET.originInode, superblock.origin.inode);
  writeString(target, OFFSET.policy, POLICY_NAME_BYTES, superblock.policy);
  writeString(target, OFFSET.originName, ORIGIN_NAME_BYTES, superblock.origin.name);
  target.writeUInt32LE(crc32c(target.subarray(0, OFFSET.crc)), OFFSET.crc);
  return copy;
}

/**
 * Decodes and validates one superblock copy read from offset copy * 4096.
 * Throws NOT_A_CACHE (no magic), NEWER_VERSION, or CORRUPT.
 */
export function decodeSuperblock(source: Buffer, copy: number): Superblock {
  assert(source.length === SUPERBLOCK_BYTES);
  if (source.toString('ascii', OFFSET.magic, OFFSET.magic + 8) !== SUPERBLOCK_MAGIC) {
    throw new BlockcacheError('NOT_A_CACHE', 'no blockcache superblock (wrong magic)');
  }
  if (crc32c(source.subarray(0, OFFSET.crc)) !== source.readUInt32LE(OFFSET.crc)) {
    throw new BlockcacheError('CORRUPT', `superblock copy ${copy} fails its checksum`);
  }
  const version = source.readUInt32LE(OFFSET.version);
  const features = source.readUInt32LE(OFFSET.features);
  if (version > FORMAT_VERSION || (features & ~FEATURES_KNOWN) !== 0) {
    throw new BlockcacheError('NEWER_VERSION',
      `cache was written by a newer blockcache (format ${version}, features 0x${features.toString(16)}); this one reads format ${FORMAT_VERSION}`);
  }
  if (version < 1) throw new BlockcacheError('CORRUPT', `invalid format version ${version}`);
  if (source.readUInt32LE(OFFSET.copyIndex) !== copy) {
    throw new BlockcacheError('CORRUPT', `superblock copy ${copy} claims to be copy ${source.readUInt32LE(OFFSET.copyIndex)}`);
  }
  const modeIndex = source.readUInt8(OFFSET.mode);
  const mode = CACHE_MODES[modeIndex];
  if (!mode) throw new BlockcacheError('CORRUPT', `invalid cache mode ${modeIndex}`);
  const superblock: Superblock = {
    uuid: Buffer.from(source.subarray(OFFSET.uuid, OFFSET.uuid + UUID_BYTES)),
    sequence: readU64(source, OFFSET.sequence),
    commitSequence: readU64(source, OFFSET.commitSequence),
    blockBytes: source.readUInt32LE(OFFSET.blockBytes),
    assoc: source.readUInt32LE(OFFSET.assoc),
    assocFull: source.readUInt8(OFFSET.assocFull) === 1,
    cacheBlocks: readU64(source, OFFSET.cacheBlocks),
    metadataOffsetBytes: readU64(source, OFFSET.metadataOffset),
    dataOffsetBytes: readU64(source, OFFSET.dataOffset),
    cacheDeviceBytes: readU64(source, OFFSET.cacheDeviceBytes),
    mode,
    policy: readString(source, OFFSET.policy, POLICY_NAME_BYTES),
    cleanShutdown: source.readUInt8(OFFSET.cleanShutdown) === 1,
    originWritesUncommitted: source.readUInt8(OFFSET.originWritesUncommitted) === 1,
    origin: {
      sizeBytes: readU64(source, OFFSET.originBytes),
      name: readString(source, OFFSET.originName, ORIGIN_NAME_BYTES),
      deviceId: readU64(source, OFFSET.originDeviceId),
      inode: readU64(source, OFFSET.originInode),
      fingerprint: source.readUInt32LE(OFFSET.fingerprint),
      fingerprintValid: source.readUInt8(OFFSET.fingerprintValid) === 1,
    },
  };
  validateGeometry(superblock, copy);
  return superblock;
}

function validateGeometry(superblock: Superblock, copy: number): void {
  const { blockBytes, assoc, cacheBlocks, dataOffsetBytes, metadataOffsetBytes, cacheDeviceBytes } = superblock;
  const problems: string[] = [];
  if (!(blockBytes >= 4096 && blockBytes <= 2 ** 20 && (blockBytes & (blockBytes - 1)) === 0)) problems.push(`block size ${blockBytes}`);
  if (!(cacheBlocks > 0 && assoc > 0 && cacheBlocks % assoc === 0)) problems.push(`assoc ${assoc} / cache blocks ${cacheBlocks}`);
  if (superblock.assocFull !== (assoc === cacheBlocks)) problems.push('assoc flag');
  if (metadataOffsetBytes !== SUPERBLOCK_BYTES * SUPERBLOCK_COPIES) problems.push(`metadata offset ${metadataOffsetBytes}`);
  if (dataOffsetBytes % blockBytes !== 0 || dataOffsetBytes < metadataOffsetBytes + cacheBlocks * 32) problems.push(`data offset ${dataOffsetBytes}`);
  if (dataOffsetBytes + cacheBlocks * blockBytes > cacheDeviceBytes) problems.push('data region past the device end');
  if (problems.length > 0) throw new BlockcacheError('CORRUPT', `superblock copy ${copy} has an invalid geometry: ${problems.join(', ')}`);
}

/**
 * Chooses the newest valid copy. Throws the most telling error when no copy is
 * valid: NOT_A_CACHE only if neither copy has the magic.
 */
export function chooseSuperblock(copies: readonly Buffer[]): { superblock: Superblock; damagedCopies: number } {
  let best: Superblock | undefined;
  let damaged = 0;
  const errors: BlockcacheError[] = [];
  copies.forEach((buffer, copy) => {
    try {
      const candidate = decodeSuperblock(buffer, copy);
      if (!best || candidate.sequence > best.sequence) best = candidate;
    } catch (error) {
      if (!(error instanceof BlockcacheError)) throw error;
      damaged++;
      errors.push(error);
    }
  });
  if (best) return { superblock: best, damagedCopies: damaged };
  const telling = errors.find((e) => e.code === 'NEWER_VERSION') ?? errors.find((e) => e.code === 'CORRUPT') ?? errors[0];
  assert(telling);
  throw telling;
}
