// The state and sizing shared by the sampled f/age policies (freqage, freqctx):
// per block a 4-bit counter (0 = not resident) and a 16-bit stamp word, per set
// an access clock, and shared a count-min sketch and a ghost table, all sized
// at construction from a few tuning knobs; plus the xorshift generator that
// draws the eviction sample. Subclasses decide what a stamp word holds (its
// stamp bits are `stampMask`) and how victims are scored. No I/O; no
// allocation after construction.
import { FrequencySketch } from './frequency-sketch.js';
import { PolicyGeometry, originLookup } from './policy.js';

/** How a sampled policy sizes its shared tables. */
export interface SampledSizing {
  /** Sketch counters per row, per cache block (rounded up to a power of two). */
  readonly sketchWidthPerBlock: number;
  /** Smallest sketch row. */
  readonly sketchWidthMin: number;
  /** Sketch increments between halvings, per cache block. */
  readonly sampleFactor: number;
  /** Ghost slots per cache block (rounded up to a power of two). */
  readonly ghostPerBlock: number;
  /** A ghost entry lives this many generations of cacheBlocks / ghostGenerations misses (≈ one cache of misses). */
  readonly ghostGenerations: number;
  /** Stamp unit = max(1, assoc >> stampShift) accesses of the set. */
  readonly stampShift: number;
}

/** The sample generator's default seed. */
export const SAMPLE_SEED = 0x9e3779b9;

export abstract class SampledPolicy {
  protected readonly assoc: number;
  protected readonly counters: Uint8Array; // two 4-bit counters per byte
  protected readonly stamps: Uint16Array;
  protected readonly clocks: Float64Array;
  protected readonly unit: number;
  protected readonly sketch: FrequencySketch;
  protected readonly ghost: Uint16Array;
  protected readonly ghostMask: number;
  protected readonly generationLength: number;
  protected readonly ownOrigins: Float64Array | null;
  protected readonly originOf: (cacheBlock: number) => number;
  private random: number;

  constructor(geometry: PolicyGeometry, sizing: SampledSizing, private readonly stampMask: number, seed = SAMPLE_SEED) {
    const { cacheBlocks, assoc } = geometry;
    this.assoc = assoc;
    this.random = seed >>> 0 || 1;
    this.counters = new Uint8Array(Math.ceil(cacheBlocks / 2));
    this.stamps = new Uint16Array(cacheBlocks);
    this.clocks = new Float64Array(cacheBlocks / assoc);
    this.unit = Math.max(1, assoc >> sizing.stampShift);
    let width = sizing.sketchWidthMin;
    while (width < cacheBlocks * sizing.sketchWidthPerBlock) width *= 2;
    this.sketch = new FrequencySketch(width, Math.max(1, Math.round(cacheBlocks * sizing.sampleFactor)));
    let ghostSlots = 1;
    while (ghostSlots < cacheBlocks * sizing.ghostPerBlock) ghostSlots *= 2;
    this.ghost = new Uint16Array(ghostSlots);
    this.ghostMask = ghostSlots - 1;
    this.generationLength = Math.max(1, Math.floor(cacheBlocks / sizing.ghostGenerations));
    const origins = originLookup(geometry);
    this.ownOrigins = origins.own;
    this.originOf = origins.originOf;
  }

  get memoryBytes(): number {
    return (
      this.counters.byteLength + this.stamps.byteLength + this.clocks.byteLength + this.sketch.memoryBytes +
      this.ghost.byteLength + (this.ownOrigins?.byteLength ?? 0)
    );
  }

  /** The set's clock in stamp units, within the stamp bits. */
  protected now(set: number): number {
    return Math.floor(this.clocks[set]! / this.unit) & this.stampMask;
  }

  protected nextRandom(): number {
    let state = this.random;
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    this.random = state;
    return state >>> 0;
  }
}
