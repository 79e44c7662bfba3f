// A count-min sketch of 4-bit counters estimating how often each origin block
// was accessed recently (TinyLFU, Einziger et al., ACM ToS 2017).
//
// Four rows of `width` counters (a power of two), two counters per byte. Every
// `samplePeriod` increments all counters are halved, so the estimate follows
// the recent past and old popularity fades. Estimates never undercount
// (except through halving) and saturate at 15. No allocation after construction.
import { assert, isPowerOfTwo } from '../stdx/assert.js';

export const SKETCH_ROWS = 4;
const COUNTER_MAX = 15;
const SEEDS = [0x9e3779b1, 0x85ebca6b, 0xc2b2ae35, 0x27d4eb2f] as const;
const MIX_HIGH = 0x165667b1;

export class FrequencySketch {
  private readonly nibbles: Uint8Array;
  private readonly mask: number;
  private readonly rowShift: number;
  private increments = 0;
  private readonly hashes = new Uint32Array(SKETCH_ROWS);

  constructor(readonly width: number, readonly samplePeriod: number) {
    assert(isPowerOfTwo(width), 'sketch width must be a power of two');
    assert(samplePeriod > 0, 'sample period must be positive');
    this.mask = width - 1;
    this.rowShift = Math.log2(width);
    this.nibbles = new Uint8Array((width * SKETCH_ROWS) / 2);
  }

  get memoryBytes(): number {
    return this.nibbles.byteLength;
  }

  private index(key: number): void {
    const low = key >>> 0;
    const high = Math.floor(key / 2 ** 32) >>> 0;
    const base = Math.imul(low ^ Math.imul(high, MIX_HIGH), 0x7feb352d) >>> 0;
    for (let row = 0; row < SKETCH_ROWS; row++) {
      let hash = Math.imul(base ^ (base >>> 15), SEEDS[row]!);
      hash ^= hash >>> 13;
      this.hashes[row] = (row << this.rowShift) | (hash & this.mask);
    }
  }

  private read(counter: number): number {
    const byte = this.nibbles[counter >>> 1]!;
    return (counter & 1) === 0 ? byte & 0x0f : byte >>> 4;
  }

  estimate(key: number): number {
    this.index(key);
    let minimum = COUNTER_MAX;
    for (let row = 0; row < SKETCH_ROWS; row++) minimum = Math.min(minimum, this.read(this.hashes[row]!));
    return minimum;
  }

  /** Counts one access to `key` (conservative update: only the minimal counters grow). */
  increment(key: number): void {
    this.index(key);
    let minimum = COUNTER_MAX;
    for (let row = 0; row < SKETCH_ROWS; row++) minimum = Math.min(minimum, this.read(this.hashes[row]!));
    if (minimum < COUNTER_MAX) {
      for (let row = 0; row < SKETCH_ROWS; row++) {
        const counter = this.hashes[row]!;
        if (this.read(counter) === minimum) this.nibbles[counter >>> 1]! += (counter & 1) === 0 ? 1 : 16;
      }
    }
    if (++this.increments >= this.samplePeriod) this.halve();
  }

  /** Ages every counter by half (the TinyLFU reset). */
  private halve(): void {
    this.increments = 0;
    for (let byte = 0; byte < this.nibbles.length; byte++) this.nibbles[byte] = (this.nibbles[byte]! >>> 1) & 0x77;
  }
}
