// The access counts of recently evicted blocks, for the sampled policies
// (freqage, freqctx): when an evicted block comes back it resumes its count
// instead of starting again at 1.
//
//   evict ──► remember(origin, count)    the block's fingerprint and count go into
//                                        one of the 8 entries of its bucket (the
//                                        empty or least-counted one; a block
//                                        counted less than every entry there is
//                                        not kept)
//   miss  ──► recall(origin) → count     found: the count is returned and the
//                                        entry freed (the block is resident again)
//   every `halvingPeriod` accesses       every count is halved (0 = empty), so
//                                        old popularity fades
//
// It replaces the count-min sketch these policies used (TinyLFU's): a sketch
// must count every block of the recent past, resident or not, once-seen or not;
// its width was floored at 16,384 counters, so small caches were measured with
// far more counters per block than a large cache gets, and at the same memory
// per block (2 B) the sketch closes a third less of hplajw's LRU-to-OPT gap
// (docs/POLICIES.md). This table holds only evicted blocks, keeps the most
// counted of them, and has no floor beyond one bucket: it is sized per cache
// block, so a cache of 73 blocks and one of 1,000,000 get the same memory per
// block.
//
// Entries are 16 bits: a 12-bit fingerprint and a 4-bit count (0 = empty).
// Two blocks with the same bucket and fingerprint share an entry (1 in 4,096
// per entry of the bucket). A bucket is 16 bytes. No allocation after construction; no I/O.
import { assert } from '../stdx/assert.js';

/** Entries per bucket. */
export const HISTORY_WAYS = 8;
const COUNT_MASK = 0x000f;
const FINGERPRINT_SHIFT = 4;
const FINGERPRINT_MASK = 0x0fff;
const FINGERPRINT_BITS = 0xfff0;

export class HistoryTable {
  private readonly entries: Uint16Array;
  private readonly buckets: number;
  private accesses = 0;

  /** `entries` is rounded up to whole buckets; `halvingPeriod` is in accesses (tick() calls). */
  constructor(entries: number, private readonly halvingPeriod: number) {
    assert(entries > 0 && halvingPeriod > 0, 'history table: entries and halving period must be positive');
    this.buckets = Math.ceil(entries / HISTORY_WAYS);
    this.entries = new Uint16Array(this.buckets * HISTORY_WAYS);
  }

  get memoryBytes(): number {
    return this.entries.byteLength;
  }

  /** Keeps `count` (1..15) for an evicted block unless its bucket holds only blocks counted more. */
  remember(originBlock: number, count: number): void {
    const hash = historyHash(originBlock);
    const first = (hash % this.buckets) * HISTORY_WAYS;
    const fingerprint = (hash >>> 20) & FINGERPRINT_MASK;
    let slot = -1;
    let least = COUNT_MASK + 1;
    for (let entry = first; entry < first + HISTORY_WAYS; entry++) {
      const value = this.entries[entry]!;
      const stored = value & COUNT_MASK;
      if (stored !== 0 && value >>> FINGERPRINT_SHIFT === fingerprint) {
        slot = entry;
        break;
      }
      if (stored < least) {
        least = stored;
        slot = entry;
      }
    }
    if ((this.entries[slot]! & COUNT_MASK) > count && this.entries[slot]! >>> FINGERPRINT_SHIFT !== fingerprint) return;
    this.entries[slot] = (fingerprint << FINGERPRINT_SHIFT) | count;
  }

  /** The count remembered for `originBlock` (0 if none); the entry is freed. */
  recall(originBlock: number): number {
    const hash = historyHash(originBlock);
    const first = (hash % this.buckets) * HISTORY_WAYS;
    const fingerprint = (hash >>> 20) & FINGERPRINT_MASK;
    for (let entry = first; entry < first + HISTORY_WAYS; entry++) {
      const value = this.entries[entry]!;
      if ((value & COUNT_MASK) !== 0 && value >>> FINGERPRINT_SHIFT === fingerprint) {
        this.entries[entry] = 0;
        return value & COUNT_MASK;
      }
    }
    return 0;
  }

  /** One access to the cache: every `halvingPeriod` of them all counts are halved. */
  tick(): void {
    if (++this.accesses < this.halvingPeriod) return;
    this.accesses = 0;
    const entries = this.entries;
    for (let entry = 0; entry < entries.length; entry++) {
      const value = entries[entry]!;
      entries[entry] = (value & FINGERPRINT_BITS) | ((value & COUNT_MASK) >>> 1);
    }
  }
}

/** A 32-bit mix of an origin block number (independent of ghostHash): low bits pick a bucket, bits 20..31 are the fingerprint. */
function historyHash(originBlock: number): number {
  const low = originBlock >>> 0;
  const high = Math.floor(originBlock / 2 ** 32) >>> 0;
  let hash = Math.imul(low ^ Math.imul(high, 0x27d4eb2f) ^ 0x3c6ef372, 0x7feb352d) >>> 0;
  hash ^= hash >>> 15;
  hash = Math.imul(hash, 0x846ca68b) >>> 0;
  hash ^= hash >>> 16;
  return hash >>> 0;
}
