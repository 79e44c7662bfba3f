// CRC-32C (Castagnoli) for superblocks, metadata records and cache-block data.
// @node-rs/crc32 uses the CPU's CRC32 instructions; see docs/ARCHITECTURE.md.
import { crc32c as nativeCrc32c } from '@node-rs/crc32';

export function crc32c(data: Uint8Array, initial = 0): number {
  return nativeCrc32c(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength), initial) >>> 0;
}
