// The state and sizing shared by the sampled f/age policies (freqage, freqctx):
// per block a 4-bit counter (0 = not resident) and a 16-bit stamp word, per set
// an access clock, and shared the history table (counts of evicted blocks) and
// the regret ghost table, both sized per cache block at construction; plus the xorshift generator that
// draws the eviction sample. Subclasses decide what a stamp word holds (its
// stamp bits are `stampMask`) and how victims are scored. No I/O; no
// allocation after construction.
import { HistoryTable } from './history-table.js';
import { PolicyGeometry, originLookup } from './policy.js';

/** How a sampled policy sizes its shared tables. */
export interface SampledSizing {
  /** History entries (counts of evicted blocks) per cache block. */
  readonly historyPerBlock: number;
  /** Accesses between halvings of the remembered counts, per cache block. */
  readonly historyHalvingFactor: number;
  /** Ghost slots per cache block (rounded up to a whole number). */
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
  protected readonly history: HistoryTable;
  protected readonly ghost: Uint16Array;
  protected readonly ghostSlots: number;
  protected readonly generationLength: number;
  /** The generation stamp new ghost entries get (countGenerationMiss). */
  protected generation = 1;
  private generationMisses = 0;
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
    this.history = new HistoryTable(Math.ceil(cacheBlocks * sizing.historyPerBlock), Math.max(1, Math.round(cacheBlocks * sizing.historyHalvingFactor)));
    this.ghostSlots = Math.max(1, Math.ceil(cacheBlocks * sizing.ghostPerBlock));
    this.ghost = new Uint16Array(this.ghostSlots);
    this.generationLength = Math.max(1, Math.floor(cacheBlocks / sizing.ghostGenerations));
    const origins = originLookup(geometry);
    this.ownOrigins = origins.own;
    this.originOf = origins.originOf;
  }

  get memoryBytes(): number {
    return (
      this.counters.byteLength + this.stamps.byteLength + this.clocks.byteLength + this.history.memoryBytes +
      this.ghost.byteLength + (this.ownOrigins?.byteLength ?? 0)
    );
  }

  /** The set's clock in stamp units, within the stamp bits. */
  protected now(set: number): number {
    return Math.floor(this.clocks[set]! / this.unit) & this.stampMask;
  }

  /** The ghost slot of a ghostHash() value (its low bits when the table is a power of two; the top 8 bits are the fingerprint). */
  protected ghostSlot(hash: number): number {
    return (hash >>> 0) % this.ghostSlots;
  }

  /**
   * Counts a miss toward the ghost table's generations: every generationLength misses the
   * stamp new ghost entries get moves on, cycling through 1..`stamps` (0 marks an empty slot).
   */
  protected countGenerationMiss(stamps: number): void {
    if (++this.generationMisses >= this.generationLength) {
      this.generationMisses = 0;
      this.generation = this.generation === stamps ? 1 : this.generation + 1;
    }
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
