// freqctx, blockcache's default policy: freqage (sampled eviction by
// frequency / age^α, experts mixed by regret) with a third expert that knows
// the request type, and regret learned from both directions.
//
//   miss ──► sample 64 blocks of the set; three experts each pick a victim:
//            F  min  ln f − 0.35 ln age                  (frequency first)
//            R  min  ln f − 1.00 ln age                  (recency first)
//            W  min  ln f − 0.35 ln age + 1.25·[written]  (F, but a block whose
//                                                       last access was a write is
//                                                       worth e^1.25 ≈ 3.5 × more)
//            the expert with the largest weight decides.
//   regret ─► the victim, when some expert disagreed, goes into the ghost table
//            tagged with the experts that chose it; a later miss on it lowers their
//            weights (LeCaR). The blocks the *other* experts would have evicted are
//            "nominated" in the same table, and a later hit on one lowers the
//            weights of the experts that nominated it, so an expert that never
//            decides is still judged. No weight falls below 0.1 / 3, so an expert
//            that was wrong in one phase can take the decision back within a few
//            regrets in the next (without the floor, weights of 0.001 kept the
//            write expert deciding long after it stopped paying at large sizes).
//
// f is the block's access count: on insertion its count when it was last
// evicted, from the history table (history-table.ts), plus 1; +1 per hit
// (4 bits, saturating at 15).
//
// Why the write bit: on block traces a block last written is re-accessed much
// sooner than one last read (hplajw: 66% of read misses are not reused within
// 4 cache sizes of accesses, 34% of write misses; written blocks are overwritten
// and read back soon, reads are of large read-mostly files). Whether that is worth
// keeping writes longer depends on the size (hplajw: +8 points of the gap at 10%,
// −20 at 25% as a fixed rule), so it is an expert, weighed by regret, not a rule.
//
// Memory per block: a 4-bit counter (0 = not resident) and a 16-bit word holding
// a 15-bit coarse timestamp and the write bit (2.5 B); shared: the history table
// (2 entries of 2 B per block: 4 B) and the ghost table (¼ entry of 2 B per
// block: 0.5 B; 16-bit entries: 8-bit fingerprint, nomination flag, 3 expert
// bits, 4-bit generation). Per set: an access clock. About 7 B per block in all,
// the same for every cache size.
//
// Timestamps: as freqage, with a 15-bit range: every 2^13 units a set is swept,
// ages are clamped at 2^14 units, and on every second sweep counts are halved
// (so counts fade at freqage's rate).
import { assert } from '../stdx/assert.js';
import { ghostHash, nibble, setNibble } from './packed.js';
import { SAMPLE_SEED, SampledPolicy, SampledSizing } from './sampled-policy.js';
import { AccessContext, NO_BLOCK, PolicyGeometry, ReplacementPolicy } from './policy.js';

const COUNTER_MAX = 15;
const STAMP_MASK = 0x7fff;
const STAMP_HALF = 0x4000;
const SWEEP_UNITS = 0x2000;
const WRITTEN = 1; // low bit of a stamp word
const GENERATIONS = 15; // ghost generation stamps 1..15; 0 = empty slot
const GHOST_GENERATION = 0x0f;
const GHOST_EXPERT_SHIFT = 4;
const GHOST_NOMINATION = 0x80;
const GHOST_FINGERPRINT_SHIFT = 8;
const EXPERTS = 3;
const FREQUENCY = 0;
const RECENCY = 1;
const WRITES = 2;
const LOG_COUNT = Float64Array.from({ length: COUNTER_MAX + 1 }, (_, count) => (count === 0 ? -Infinity : Math.log(count)));

export interface FreqCtxTuning extends SampledSizing {
  /** Exponent of age for the frequency and write experts. */
  readonly alphaFrequency: number;
  /** Exponent of age for the recency expert. */
  readonly alphaRecency: number;
  /** Log-score bonus of a block last written, for the write expert. */
  readonly writeBonus: number;
  /** Regret learning rate (LeCaR: 0.45). */
  readonly learningRate: number;
  /** Smallest weight of an expert after a regret update (a wrong expert can win back the decision soon). */
  readonly weightFloor: number;
  /** Initial weights of the frequency, recency and write experts (normalised). */
  readonly initialWeights: readonly [number, number, number];
  /** Seed of the sampling generator (experiments only). */
  readonly seed: number;
}

export const FREQCTX_DEFAULTS: FreqCtxTuning = {
  samples: 64,
  alphaFrequency: 0.35,
  alphaRecency: 1,
  writeBonus: 1.25,
  learningRate: 0.45,
  historyPerBlock: 2,
  historyHalvingFactor: 30,
  ghostPerBlock: 0.25,
  ghostGenerations: 8,
  stampShift: 8,
  weightFloor: 0.1 / EXPERTS,
  initialWeights: [0.5, 0.2, 0.3],
  seed: SAMPLE_SEED,
};

export class FreqCtxPolicy extends SampledPolicy implements ReplacementPolicy {
  protected readonly generationStamps = GENERATIONS;
  readonly name = 'freqctx';
  private readonly weights = new Float64Array(EXPERTS);
  private readonly decisions = new Float64Array(EXPERTS);
  // The current victim search's best candidates, per expert (no allocation per eviction).
  private readonly choices = new Float64Array(EXPERTS);
  private readonly scores = new Float64Array(EXPERTS);
  private readonly tuning: FreqCtxTuning;

  constructor(geometry: PolicyGeometry, tuning: Partial<FreqCtxTuning> = {}) {
    const full = { ...FREQCTX_DEFAULTS, ...tuning };
    super(geometry, full, STAMP_MASK, full.seed);
    this.tuning = full;
    assert(this.tuning.ghostGenerations < GENERATIONS, 'freqctx: ghost entries must expire before their generation wraps');
    const initial = this.tuning.initialWeights;
    const total = initial[0] + initial[1] + initial[2];
    for (let expert = 0; expert < EXPERTS; expert++) this.weights[expert] = initial[expert]! / total;
  }

  /** Weights of the frequency, recency and write experts (for tests and status). */
  get expertWeights(): readonly number[] {
    return Array.from(this.weights);
  }

  /** Evictions decided by each expert so far (for tests and experiments). */
  get expertDecisions(): readonly number[] {
    return Array.from(this.decisions);
  }

  hit(cacheBlock: number, context?: AccessContext): void {
    const count = nibble(this.counters, cacheBlock);
    assert(count !== 0, 'freqctx: hit on a block that is not resident');
    const set = Math.floor(cacheBlock / this.assoc);
    this.tick(set);
    if (count < COUNTER_MAX) setNibble(this.counters, cacheBlock, count + 1);
    const written = context === undefined ? this.stamps[cacheBlock]! & WRITTEN : context.isWrite ? WRITTEN : 0;
    this.stamps[cacheBlock] = (this.now(set) << 1) | written;
    this.history.tick();
    this.learnFromNomination(this.originOf(cacheBlock));
  }

  victim(set: number, _originBlock: number, evictable: (cacheBlock: number) => boolean): number {
    this.choices.fill(NO_BLOCK);
    this.scores.fill(Infinity);
    this.sampleSet(set, evictable);
    if (this.choices[0] === NO_BLOCK) return NO_BLOCK;
    let decider = 0;
    for (let expert = 1; expert < EXPERTS; expert++) if (this.weights[expert]! > this.weights[decider]!) decider = expert;
    this.decisions[decider]!++;
    const chosen = this.choices[decider]!;
    let agreeing = 0;
    for (let expert = 0; expert < EXPERTS; expert++) if (this.choices[expert] === chosen) agreeing |= 1 << expert;
    if (agreeing === (1 << EXPERTS) - 1) return chosen;
    // Disagreement: remember the victim (for a later miss) and the others' candidates (for a later hit).
    for (let expert = 0; expert < EXPERTS; expert++) {
      const block = this.choices[expert]!;
      if ((agreeing & (1 << expert)) !== 0 || this.isNominatedEarlier(block, expert)) continue;
      let nominating = 0;
      for (let other = expert; other < EXPERTS; other++) if (this.choices[other] === block) nominating |= 1 << other;
      this.remember(block, nominating, true);
    }
    this.remember(chosen, agreeing, false);
    return chosen;
  }

  /** True when an expert before `expert` picked the same block (its nomination already covers `expert`). */
  private isNominatedEarlier(block: number, expert: number): boolean {
    for (let other = 0; other < expert; other++) if (this.choices[other] === block) return true;
    return false;
  }

  /** Scores one sampled block for every expert (the best so far lives in fields). */
  protected hasChoice(): boolean {
    return this.choices[0] !== NO_BLOCK;
  }

  protected consider(block: number, now: number, evictable: (cacheBlock: number) => boolean): void {
    const count = nibble(this.counters, block);
    if (count === 0 || !evictable(block)) return;
    const word = this.stamps[block]!;
    const logAge = Math.log(((now - (word >>> 1)) & STAMP_MASK) + 1);
    const logCount = LOG_COUNT[count]!;
    const byFrequency = logCount - this.tuning.alphaFrequency * logAge;
    this.offer(FREQUENCY, block, byFrequency);
    this.offer(RECENCY, block, logCount - this.tuning.alphaRecency * logAge);
    this.offer(WRITES, block, (word & WRITTEN) !== 0 ? byFrequency + this.tuning.writeBonus : byFrequency);
  }

  private offer(expert: number, block: number, score: number): void {
    if (score < this.scores[expert]!) {
      this.scores[expert] = score;
      this.choices[expert] = block;
    }
  }

  insert(cacheBlock: number, originBlock: number, context?: AccessContext): void {
    if (this.ownOrigins !== null) this.ownOrigins[cacheBlock] = originBlock;
    const set = Math.floor(cacheBlock / this.assoc);
    setNibble(this.counters, cacheBlock, Math.min(COUNTER_MAX, this.history.recall(originBlock) + 1));
    this.stamps[cacheBlock] = (this.now(set) << 1) | (context?.isWrite === true ? WRITTEN : 0);
  }

  remove(cacheBlock: number, evicted: boolean): void {
    const count = nibble(this.counters, cacheBlock);
    assert(count !== 0, 'freqctx: removing a block that is not resident');
    // An evicted block's count is kept for its return; an invalidated one (trim, write-around) is forgotten.
    if (evicted) this.history.remember(this.originOf(cacheBlock), count);
    setNibble(this.counters, cacheBlock, 0);
  }

  /** Writes a ghost entry for the origin of `cacheBlock`: a victim (nomination false) or a resident candidate. */
  private remember(cacheBlock: number, experts: number, nomination: boolean): void {
    const hash = ghostHash(this.originOf(cacheBlock));
    const slot = this.ghostSlot(hash);
    const fingerprint = hash >>> 24;
    if (nomination) {
      // The same block nominated again while its entry is live: add the new experts.
      const entry = this.ghost[slot]!;
      if ((entry & GHOST_NOMINATION) !== 0 && entry >>> GHOST_FINGERPRINT_SHIFT === fingerprint && this.ghostAge(entry) < this.tuning.ghostGenerations) {
        experts |= (entry >>> GHOST_EXPERT_SHIFT) & 0x7;
      }
    }
    this.ghost[slot] = (fingerprint << GHOST_FINGERPRINT_SHIFT) | (nomination ? GHOST_NOMINATION : 0) | (experts << GHOST_EXPERT_SHIFT) | this.generation;
  }

  /** A miss on a block some experts evicted recently: they regret it (LeCaR's update, discounted by the ghost's age). */
  protected learnFromGhost(originBlock: number): void {
    this.learn(originBlock, false);
  }

  /** A hit on a block some experts wanted to evict recently: they were wrong. */
  private learnFromNomination(originBlock: number): void {
    this.learn(originBlock, true);
  }

  private learn(originBlock: number, nomination: boolean): void {
    const hash = ghostHash(originBlock);
    const slot = this.ghostSlot(hash);
    const entry = this.ghost[slot]!;
    if (entry === 0 || entry >>> GHOST_FINGERPRINT_SHIFT !== hash >>> 24) return;
    if (((entry & GHOST_NOMINATION) !== 0) !== nomination) return;
    this.ghost[slot] = 0;
    const age = this.ghostAge(entry);
    const generations = this.tuning.ghostGenerations;
    if (age >= generations) return;
    const penalty = Math.exp(-this.tuning.learningRate * Math.pow(0.005, (age + 0.5) / generations));
    const experts = (entry >>> GHOST_EXPERT_SHIFT) & 0x7;
    let total = 0;
    for (let expert = 0; expert < EXPERTS; expert++) {
      if ((experts & (1 << expert)) !== 0) this.weights[expert]! *= penalty;
      total += this.weights[expert]!;
    }
    for (let expert = 0; expert < EXPERTS; expert++) this.weights[expert] = Math.min(0.99, Math.max(this.tuning.weightFloor, this.weights[expert]! / total));
  }

  private ghostAge(entry: number): number {
    return (this.generation - (entry & GHOST_GENERATION) + GENERATIONS) % GENERATIONS;
  }

  protected tick(set: number): void {
    const clock = ++this.clocks[set]!;
    const period = this.unit * SWEEP_UNITS;
    if (clock % period === 0) this.sweep(set, (clock / period) % 2 === 0);
  }

  /** Clamps ages to 2^14 units (stamps never wrap past their owner); every second sweep halves every counter (floor 1). */
  private sweep(set: number, halve: boolean): void {
    const now = this.now(set);
    const first = set * this.assoc;
    for (let block = first; block < first + this.assoc; block++) {
      const count = nibble(this.counters, block);
      if (count === 0) continue;
      const word = this.stamps[block]!;
      if (((now - (word >>> 1)) & STAMP_MASK) > STAMP_HALF) this.stamps[block] = (((now - STAMP_HALF) & STAMP_MASK) << 1) | (word & WRITTEN);
      if (halve) setNibble(this.counters, block, Math.max(1, count >>> 1));
    }
  }
}
