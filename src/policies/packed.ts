// Small packed-state helpers shared by the sampled policies (freqage, freqctx):
// 4-bit counters two to a byte, and the hash that places and fingerprints ghost
// entries. Pure functions; no allocation.

/** The 4-bit counter `index` of `counters` (two per byte, low nibble first). */
export function nibble(counters: Uint8Array, index: number): number {
  const byte = counters[index >>> 1]!;
  return (index & 1) === 0 ? byte & 0x0f : byte >>> 4;
}

/** Sets the 4-bit counter `index` to `value` (0..15). */
export function setNibble(counters: Uint8Array, index: number, value: number): void {
  const at = index >>> 1;
  const byte = counters[at]!;
  counters[at] = (index & 1) === 0 ? (byte & 0xf0) | value : (byte & 0x0f) | (value << 4);
}

/** A 32-bit mix of an origin block number: low bits pick a ghost slot, the top 8 bits are its fingerprint. */
export function ghostHash(originBlock: number): number {
  const low = originBlock >>> 0;
  const high = Math.floor(originBlock / 2 ** 32) >>> 0;
  let hash = Math.imul(low ^ Math.imul(high, 0x165667b1), 0x85ebca6b) >>> 0;
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35) >>> 0;
  hash ^= hash >>> 16;
  return hash;
}
