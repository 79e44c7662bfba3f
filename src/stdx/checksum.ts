// CRC-32C (Castagnoli) for superblocks, metadata records and cache-block data.
// @node-rs/crc32 uses the CPU's CRC32 instructions; see docs/ARCHITECTURE.md.
// For a few dozen bytes (one metadata record) a native call costs more than the
// checksum itself (a subarray plus a N-API crossing: ~0.4 µs against ~0.03 µs),
// so `crc32cRange` computes those in JavaScript, slicing by four, without
// allocating. Both give identical results (src/stdx/checksum.test.ts).
import { crc32c as nativeCrc32c } from '@node-rs/crc32';

export function crc32c(data: Uint8Array, initial = 0): number {
  return nativeCrc32c(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength), initial) >>> 0;
}

/** Reflected CRC-32C polynomial. */
const POLYNOMIAL_REFLECTED = 0x82f63b78;

/** Four 256-entry tables: TABLES[k * 256 + byte] is the CRC of `byte` followed by k zero bytes (signed: no boxing). */
const TABLES = ((): Int32Array => {
  const tables = new Int32Array(4 * 256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = (crc & 1) !== 0 ? (crc >>> 1) ^ POLYNOMIAL_REFLECTED : crc >>> 1;
    tables[byte] = crc;
  }
  for (let byte = 0; byte < 256; byte++) {
    for (let k = 1; k < 4; k++) {
      const previous = tables[(k - 1) * 256 + byte]!;
      tables[k * 256 + byte] = tables[previous & 0xff]! ^ (previous >>> 8);
    }
  }
  return tables;
})();

/**
 * CRC-32C of `source[offset, offset + length)` continuing from `initial`, as
 * `crc32c(source.subarray(offset, offset + length), initial)`. For short ranges.
 */
export function crc32cRange(source: Uint8Array, offset: number, length: number, initial = 0): number {
  let crc = ~initial;
  let at = offset;
  const end = offset + length;
  for (; at + 4 <= end; at += 4) {
    crc ^= source[at]! | (source[at + 1]! << 8) | (source[at + 2]! << 16) | (source[at + 3]! << 24);
    crc = TABLES[768 + (crc & 0xff)]! ^ TABLES[512 + ((crc >>> 8) & 0xff)]! ^ TABLES[256 + ((crc >>> 16) & 0xff)]! ^ TABLES[crc >>> 24]!;
  }
  for (; at < end; at++) crc = TABLES[(crc ^ source[at]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/**
 * CRC-32C of `count` 32-bit words `words[index, index + count)` read as little-endian bytes
 * (the caller's view must be of little-endian memory), continuing from `initial`, as a
 * signed 32-bit integer (`>>> 0` gives the usual value): compared with an Int32Array word
 * it never allocates, even before the JIT has optimized the caller. One metadata record's
 * checksum covers seven words; this is the open path's inner loop.
 */
export function crc32cWords(words: Int32Array | Uint32Array, index: number, count: number, initial = 0): number {
  let crc = ~initial;
  for (let i = index; i < index + count; i++) {
    crc ^= words[i]!;
    crc = TABLES[768 + (crc & 0xff)]! ^ TABLES[512 + ((crc >>> 8) & 0xff)]! ^ TABLES[256 + ((crc >>> 16) & 0xff)]! ^ TABLES[crc >>> 24]!;
  }
  return ~crc;
}
