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
  /** Blocks of the set scored per eviction (all of them in smaller sets). */
  readonly samples: number;
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
  private readonly samples: number;
  /** Ghost generation stamps cycle through 1..generationStamps (0 marks an empty slot). */
  protected abstract readonly generationStamps: number;

  constructor(geometry: PolicyGeometry, sizing: SampledSizing, private readonly stampMask: number, seed = SAMPLE_SEED) {
    const { cacheBlocks, assoc } = geometry;
    this.assoc = assoc;
    this.samples = sizing.samples;
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

  /** A miss: the set's clock and the history advance, the ghost table is asked who was wrong, and its generation may move on. */
  admit(set: number, originBlock: number): boolean {
    this.tick(set);
    this.history.tick();
    this.learnFromGhost(originBlock);
    if (++this.generationMisses >= this.generationLength) {
      this.generationMisses = 0;
      this.generation = this.generation === this.generationStamps ? 1 : this.generation + 1;
    }
    return true;
  }

  /** One access to the set: its clock advances (and the subclass's periodic sweep runs). */
  protected abstract tick(set: number): void;

  /** Lowers the weights of the experts whose victim `originBlock` was (a miss on a ghost). */
  protected abstract learnFromGhost(originBlock: number): void;

  /** Scores one block of the sample for every expert (the subclass keeps the best so far). */
  protected abstract consider(block: number, now: number, evictable: (cacheBlock: number) => boolean): void;

  /** True once consider() has found an evictable block. */
  protected abstract hasChoice(): boolean;

  /**
   * Offers the sample of `set` to consider(): `samples` random blocks, or the whole
   * set when it is no larger, or when every sampled block was busy.
   */
  protected sampleSet(set: number, evictable: (cacheBlock: number) => boolean): void {
    const first = set * this.assoc;
    const scanAll = this.assoc <= this.samples;
    const draws = scanAll ? this.assoc : this.samples;
    const now = this.now(set);
    for (let draw = 0; draw < draws; draw++) this.consider(first + (scanAll ? draw : this.nextRandom() % this.assoc), now, evictable);
    // Every sample busy (rare: a set full of dirty or locked blocks): look at the whole set.
    if (!scanAll && !this.hasChoice()) for (let slot = 0; slot < this.assoc; slot++) this.consider(first + slot, now, evictable);
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
