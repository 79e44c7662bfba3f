// Maps origin blocks to sets, keeping runs of consecutive origin blocks in one
// set as dm-cache's hash_block does, so a sequential stream stays together and
// a set's dirty blocks can be written back as long contiguous runs.
//
// set(originBlock) = hash(originBlock >> consecutiveShift) mod sets, where the
// run length is min(assoc, CONSECUTIVE_BLOCKS_MAX). Pure; no I/O.
import { CONSECUTIVE_BLOCKS_MAX } from '../constants.js';
import { assert, isPowerOfTwo, log2Exact } from '../stdx/assert.js';

const GOLDEN_RATIO_32 = 0x9e3779b1;
const MIX_32 = 0x85ebca6b;

export class SetMapping {
  readonly sets: number;
  readonly consecutiveShift: number;
  /** 2 ** consecutiveShift: origin blocks per run. */
  private readonly runBlocks: number;

  constructor(readonly cacheBlocks: number, readonly assoc: number) {
    assert(cacheBlocks > 0 && cacheBlocks % assoc === 0, 'cacheBlocks must be a positive multiple of assoc');
    this.sets = cacheBlocks / assoc;
    // A fully associative cache (one set) may have any number of blocks.
    assert(this.sets === 1 || isPowerOfTwo(assoc), 'assoc must be a power of two');
    const run = this.sets === 1 ? CONSECUTIVE_BLOCKS_MAX : Math.min(assoc, CONSECUTIVE_BLOCKS_MAX);
    this.consecutiveShift = log2Exact(run);
    this.runBlocks = run;
  }

  setOf(originBlock: number): number {
    if (this.sets === 1) return 0;
    // The run number's low and high 32 bits; integer shifts when the block number fits 32 bits
    // (this is on every lookup: the generic path costs a double division).
    let low: number;
    let high: number;
    if (originBlock < 2 ** 32) {
      low = originBlock >>> this.consecutiveShift;
      high = 0;
    } else {
      const run = Math.floor(originBlock / this.runBlocks);
      low = run >>> 0;
      high = Math.floor(run / 2 ** 32) >>> 0;
    }
    const hash = Math.imul(low ^ Math.imul(high, MIX_32), GOLDEN_RATIO_32) >>> 0;
    // Multiplicative range reduction: uniform for any number of sets.
    return Math.floor((hash * this.sets) / 2 ** 32);
  }

  /** First cache block of a set; the set is [first, first + assoc). */
  firstBlockOf(set: number): number {
    return set * this.assoc;
  }

  setOfCacheBlock(cacheBlock: number): number {
    return Math.floor(cacheBlock / this.assoc);
  }
}
