// freqage: sampled eviction by frequency / age^α,
// with α chosen online between two experts by regret on ghost hits
// (hyperbolic caching, Blankstein et al., ATC '17, scored over a random sample
// as in Redis; the two-expert regret learning is LeCaR's, Vietri et al.,
// HotStorage '18).
//
//   miss ──► victim = the sampled block with the lowest  f / age^α
//            α = 0.35 (frequency expert)  or  α = 1 (recency expert),
//            whichever expert has the larger weight; an eviction on which the
//            two experts disagree is remembered in a ghost table, and a later
//            miss on that block lowers the weight of the expert that chose it.
//
// f is the block's access count: when it enters the cache, its count when it
// was last evicted (from the history table, history-table.ts) + 1, so blocks
// coming back after eviction keep their popularity; then +1 per hit (4 bits,
// saturating at 15). age is the time since the block's last access, counted
// in accesses to its set. Every score is compared in the log domain:
// ln f − α ln age.
//
// Memory per block: a 4-bit counter (0 = not resident), a 16-bit coarse
// timestamp, and shared: the history table (2 entries of 2 B per block) and
// the ghost table (two bytes per slot: 8-bit fingerprint, expert, generation;
// blocks / 4 slots: 0.5 B/block). Per set: an access clock. Origin blocks are read through geometry.originOf when the
// engine provides it; otherwise the policy keeps its own copy (8 B per block).
//
// Timestamps: a set's clock advances on every access to the set; stamps count
// it in units of max(1, assoc / 256) accesses and wrap at 2^16. Every 2^14
// units a set is swept: ages beyond 2^15 units are clamped (so no stamp ever
// wraps past its owner) and every counter is halved (floor 1), so old
// popularity fades. No allocation after construction; no I/O.
import { assert } from '../stdx/assert.js';
import { ghostHash, nibble, setNibble } from './packed.js';
import { SAMPLE_SEED, SampledPolicy, SampledSizing } from './sampled-policy.js';
import { NO_BLOCK, PolicyGeometry, ReplacementPolicy } from './policy.js';

const COUNTER_MAX = 15;
const STAMP_MASK = 0xffff;
const STAMP_HALF = 0x8000;
const SWEEP_UNITS = 0x4000;
const GENERATIONS = 127; // ghost generation stamps 1..127; 0 = empty slot
const GHOST_RECENCY = 0x80;
const GHOST_GENERATION = 0x7f;
const GHOST_FINGERPRINT_SHIFT = 8;
const LOG_COUNT = Float64Array.from({ length: COUNTER_MAX + 1 }, (_, count) => (count === 0 ? -Infinity : Math.log(count)));

export interface FreqAgeTuning extends SampledSizing {
  /** Exponent of age for the frequency expert (small: frequency dominates). */
  readonly alphaFrequency: number;
  /** Exponent of age for the recency expert. */
  readonly alphaRecency: number;
  /** Regret learning rate (LeCaR: 0.45). */
  readonly learningRate: number;
  /** Initial weight of the frequency expert (it decides while its weight is ≥ 0.5). */
  readonly initialFrequencyWeight: number;
  /** Seed of the sampling generator (experiments only). */
  readonly seed: number;
}

export const FREQAGE_DEFAULTS: FreqAgeTuning = {
  samples: 64,
  alphaFrequency: 0.35,
  alphaRecency: 1,
  learningRate: 0.45,
  historyPerBlock: 2,
  historyHalvingFactor: 30,
  ghostPerBlock: 0.25,
  ghostGenerations: 8,
  stampShift: 8,
  initialFrequencyWeight: 0.7,
  seed: SAMPLE_SEED,
};

export class FreqAgePolicy extends SampledPolicy implements ReplacementPolicy {
  protected readonly generationStamps = GENERATIONS;
  readonly name = 'freqage';
  private frequencyWeight: number;
  // The current victim search's best candidates (see consider()).
  private frequencyChoice = NO_BLOCK;
  private frequencyScore = Infinity;
  private recencyChoice = NO_BLOCK;
  private recencyScore = Infinity;
  private readonly tuning: FreqAgeTuning;

  constructor(geometry: PolicyGeometry, tuning: Partial<FreqAgeTuning> = {}) {
    const full = { ...FREQAGE_DEFAULTS, ...tuning };
    super(geometry, full, STAMP_MASK, full.seed);
    this.tuning = full;
    this.frequencyWeight = this.tuning.initialFrequencyWeight;
  }

  /** Weight of the frequency expert in [0.01, 0.99]; it decides while ≥ 0.5 (for tests and status). */
  get frequencyExpertWeight(): number {
    return this.frequencyWeight;
  }

  hit(cacheBlock: number): void {
    const count = nibble(this.counters, cacheBlock);
    assert(count !== 0, 'freqage: hit on a block that is not resident');
    const set = Math.floor(cacheBlock / this.assoc);
    this.tick(set);
    if (count < COUNTER_MAX) setNibble(this.counters, cacheBlock, count + 1);
    this.stamps[cacheBlock] = this.now(set);
    this.history.tick();
  }

  victim(set: number, _originBlock: number, evictable: (cacheBlock: number) => boolean): number {
    this.frequencyChoice = NO_BLOCK;
    this.frequencyScore = Infinity;
    this.recencyChoice = NO_BLOCK;
    this.recencyScore = Infinity;
    this.sampleSet(set, evictable);
    if (this.frequencyChoice === NO_BLOCK) return NO_BLOCK;
    const useFrequency = this.frequencyWeight >= 0.5;
    const chosen = useFrequency ? this.frequencyChoice : this.recencyChoice;
    if (this.frequencyChoice !== this.recencyChoice) {
      const hash = ghostHash(this.originOf(chosen));
      this.ghost[this.ghostSlot(hash)] = ((hash >>> 24) << GHOST_FINGERPRINT_SHIFT) | (useFrequency ? 0 : GHOST_RECENCY) | this.generation;
    }
    return chosen;
  }

  /** Scores one sampled block for both experts (the best so far lives in fields: no closure per eviction). */
  protected hasChoice(): boolean {
    return this.frequencyChoice !== NO_BLOCK;
  }

  protected consider(block: number, now: number, evictable: (cacheBlock: number) => boolean): void {
    const count = nibble(this.counters, block);
    if (count === 0 || !evictable(block)) return;
    const logAge = Math.log(((now - this.stamps[block]!) & STAMP_MASK) + 1);
    const byFrequency = LOG_COUNT[count]! - this.tuning.alphaFrequency * logAge;
    const byRecency = LOG_COUNT[count]! - this.tuning.alphaRecency * logAge;
    if (byFrequency < this.frequencyScore) {
      this.frequencyScore = byFrequency;
      this.frequencyChoice = block;
    }
    if (byRecency < this.recencyScore) {
      this.recencyScore = byRecency;
      this.recencyChoice = block;
    }
  }

  insert(cacheBlock: number, originBlock: number): void {
    if (this.ownOrigins !== null) this.ownOrigins[cacheBlock] = originBlock;
    const set = Math.floor(cacheBlock / this.assoc);
    setNibble(this.counters, cacheBlock, Math.min(COUNTER_MAX, this.history.recall(originBlock) + 1));
    this.stamps[cacheBlock] = this.now(set);
  }

  remove(cacheBlock: number, evicted: boolean): void {
    const count = nibble(this.counters, cacheBlock);
    assert(count !== 0, 'freqage: removing a block that is not resident');
    // An evicted block's count is kept for its return; an invalidated one (trim, write-around) is forgotten.
    if (evicted) this.history.remember(this.originOf(cacheBlock), count);
    setNibble(this.counters, cacheBlock, 0);
  }

  /** A miss on a block one expert evicted recently: that expert regrets it (LeCaR's update, discounted by the ghost's age). */
  protected learnFromGhost(originBlock: number): void {
    const hash = ghostHash(originBlock);
    const slot = this.ghostSlot(hash);
    const entry = this.ghost[slot]!;
    if (entry === 0 || entry >>> GHOST_FINGERPRINT_SHIFT !== hash >>> 24) return;
    this.ghost[slot] = 0;
    const stored = entry & GHOST_GENERATION;
    const age = (this.generation - stored + GENERATIONS) % GENERATIONS;
    const generations = this.tuning.ghostGenerations;
    if (age >= generations) return;
    const regret = Math.pow(0.005, (age + 0.5) / generations);
    const penalty = Math.exp(-this.tuning.learningRate * regret);
    let frequency = this.frequencyWeight;
    let recency = 1 - frequency;
    if ((entry & GHOST_RECENCY) !== 0) recency *= penalty;
    else frequency *= penalty;
    this.frequencyWeight = Math.min(0.99, Math.max(0.01, frequency / (frequency + recency)));
  }

  protected tick(set: number): void {
    const clock = ++this.clocks[set]!;
    if (clock % (this.unit * SWEEP_UNITS) === 0) this.sweep(set);
  }

  /** Clamps ages to 2^15 units (stamps never wrap past their owner) and halves every counter (floor 1). */
  private sweep(set: number): void {
    const now = this.now(set);
    const first = set * this.assoc;
    for (let block = first; block < first + this.assoc; block++) {
      const count = nibble(this.counters, block);
      if (count === 0) continue;
      if (((now - this.stamps[block]!) & STAMP_MASK) > STAMP_HALF) this.stamps[block] = (now - STAMP_HALF) & STAMP_MASK;
      setNibble(this.counters, block, Math.max(1, count >>> 1));
    }
  }
}
