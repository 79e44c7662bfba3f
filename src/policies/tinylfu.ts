// tinylfu, blockcache's default policy: an adaptive window in front of a
// frequency-guarded CLOCK main area (W-TinyLFU, Einziger et al., ACM ToS 2017,
// with Caffeine's hill-climbing window, laid out in 1 byte per cache block).
//
//   miss ──► window (per-set FIFO ring) ──oldest──► duel ──win──► main (CLOCK)
//                                                     └──lose──► evicted
//
// Every access counts its origin block in a shared count-min sketch. A new
// block always enters the window (so bursts and recency are served). When the
// set is full and the window is at its target, the window's oldest block
// (the candidate) duels the main area's CLOCK victim: the candidate enters
// main only if the sketch says it is accessed more often, so a scan never
// displaces a frequently used block. The window target (a share of every set)
// is adapted globally by hill climbing on the hit ratio: recency-heavy
// workloads grow it (towards LRU), frequency-heavy ones shrink it (towards LFU).
//
// Per block: one state byte (resident, window, 2-bit CLOCK counter). Per set:
// a window ring of WINDOW_PERCENT_MAX of the set (4 B per entry), a window head
// and size, a CLOCK hand. Shared: the sketch (about 1 byte per block). Origin
// blocks are read through geometry.originOf when the engine provides it;
// otherwise the policy keeps its own copy (8 B per block more).
// Invariants: window-tagged blocks are exactly those in their set's ring;
// window size <= ring capacity. No allocation after construction; no I/O.
import { assert } from '../stdx/assert.js';
import { FrequencySketch } from './frequency-sketch.js';
import { NO_BLOCK, PolicyGeometry, ReplacementPolicy, originLookup } from './policy.js';

const STATE_RESIDENT = 0x10;
const STATE_WINDOW = 0x20;
const COUNTER_MASK = 0x03;
const COUNTER_MAX = 3;

export interface TinyLfuTuning {
  /** Largest window share of a set, percent (bounds the ring memory). */
  readonly windowPercentMax: number;
  /** Initial window share, percent. */
  readonly windowPercentInitial: number;
  /** Sketch counters per row, per cache block (rounded up to a power of two). */
  readonly sketchWidthPerBlock: number;
  /** Smallest sketch row: tiny caches still need a sketch wide enough for their recent keys. */
  readonly sketchWidthMin: number;
  /** Sketch increments between halvings, per cache block (TinyLFU's W/C = 10). */
  readonly sampleFactor: number;
  /** Accesses between hill-climbing steps, per cache block. */
  readonly climbFactor: number;
  /** First hill-climbing step, percent of the set. */
  readonly climbStepPercent: number;
  /** Each step is this fraction of the previous one (Caffeine: 0.98). */
  readonly climbDecay: number;
  /** Candidate enters main on equal frequency too. */
  readonly admitTies: boolean;
  /** A promoted window block keeps its CLOCK counter (hits while in the window). */
  readonly keepCounter: boolean;
}

export const TINYLFU_DEFAULTS: TinyLfuTuning = {
  windowPercentMax: 25,
  windowPercentInitial: 10,
  sketchWidthPerBlock: 0.5,
  sketchWidthMin: 16384,
  sampleFactor: 10,
  climbFactor: 3,
  climbStepPercent: 6.25,
  climbDecay: 0.98,
  admitTies: false,
  keepCounter: true,
};

export class TinyLfuPolicy implements ReplacementPolicy {
  readonly name = 'tinylfu';
  private readonly assoc: number;
  private readonly state: Uint8Array;
  private readonly ring: Uint32Array;
  private readonly ringCapacity: number;
  private readonly windowHeads: Uint32Array;
  private readonly windowSizes: Uint32Array;
  private readonly hands: Uint32Array;
  private readonly sketch: FrequencySketch;
  private readonly ownOrigins: Float64Array | null;
  private readonly originOf: (cacheBlock: number) => number;
  private readonly tuning: TinyLfuTuning;
  // Hill climbing (global over all sets).
  private windowShare: number;
  private windowTarget: number;
  private climbStep: number;
  private readonly climbPeriod: number;
  private periodAccesses = 0;
  private periodHits = 0;
  private previousHitRatio = -1;

  constructor(geometry: PolicyGeometry & { readonly originOf?: (cacheBlock: number) => number }, tuning: Partial<TinyLfuTuning> = {}) {
    this.tuning = { ...TINYLFU_DEFAULTS, ...tuning };
    const { cacheBlocks, assoc } = geometry;
    const sets = cacheBlocks / assoc;
    this.assoc = assoc;
    this.state = new Uint8Array(cacheBlocks);
    this.ringCapacity = Math.max(1, Math.floor((assoc * this.tuning.windowPercentMax) / 100));
    this.ring = new Uint32Array(sets * this.ringCapacity);
    this.windowHeads = new Uint32Array(sets);
    this.windowSizes = new Uint32Array(sets);
    this.hands = new Uint32Array(sets);
    let width = this.tuning.sketchWidthMin;
    while (width < cacheBlocks * this.tuning.sketchWidthPerBlock) width *= 2;
    this.sketch = new FrequencySketch(width, Math.max(1, Math.round(cacheBlocks * this.tuning.sampleFactor)));
    const origins = originLookup(geometry);
    this.ownOrigins = origins.own;
    this.originOf = origins.originOf;
    this.windowShare = this.tuning.windowPercentInitial / 100;
    this.windowTarget = this.targetFor(this.windowShare);
    this.climbStep = this.tuning.climbStepPercent / 100;
    this.climbPeriod = Math.max(1, Math.round(cacheBlocks * this.tuning.climbFactor));
  }

  get memoryBytes(): number {
    return (
      this.state.byteLength + this.ring.byteLength + this.windowHeads.byteLength + this.windowSizes.byteLength +
      this.hands.byteLength + this.sketch.memoryBytes + (this.ownOrigins?.byteLength ?? 0)
    );
  }

  /** The window's current share of each set (for tests and status). */
  get windowPercent(): number {
    return this.windowShare * 100;
  }

  private targetFor(share: number): number {
    return Math.min(this.ringCapacity, Math.max(1, Math.round(share * this.assoc)));
  }

  hit(cacheBlock: number): void {
    const state = this.state[cacheBlock]!;
    assert((state & STATE_RESIDENT) !== 0, 'tinylfu: hit on a block that is not resident');
    if ((state & COUNTER_MASK) < COUNTER_MAX) this.state[cacheBlock] = state + 1;
    this.sketch.increment(this.originOf(cacheBlock));
    this.periodHits++;
    this.countAccess();
  }

  admit(_set: number, originBlock: number): boolean {
    this.sketch.increment(originBlock);
    this.countAccess();
    return true;
  }

  victim(set: number, _originBlock: number, evictable: (cacheBlock: number) => boolean): number {
    const mainVictim = this.sweepMain(set, evictable);
    if (this.windowSizes[set]! < this.windowTarget && mainVictim !== NO_BLOCK) return this.take(set, mainVictim);
    const candidate = this.oldestEvictableInWindow(set, evictable);
    if (candidate === NO_BLOCK) return mainVictim === NO_BLOCK ? NO_BLOCK : this.take(set, mainVictim);
    if (mainVictim === NO_BLOCK) return candidate;
    // The duel: the candidate replaces the main victim only if it is used more often.
    this.popWindow(set);
    const candidateFrequency = this.sketch.estimate(this.originOf(candidate));
    const victimFrequency = this.sketch.estimate(this.originOf(mainVictim));
    if (candidateFrequency > victimFrequency || (this.tuning.admitTies && candidateFrequency === victimFrequency)) {
      this.state[candidate] = this.promoted(candidate);
      return this.take(set, mainVictim);
    }
    this.state[candidate] = STATE_RESIDENT; // remove() clears it; keeps ring and tags consistent meanwhile.
    return candidate;
  }

  insert(cacheBlock: number, originBlock: number): void {
    if (this.ownOrigins !== null) this.ownOrigins[cacheBlock] = originBlock;
    const set = Math.floor(cacheBlock / this.assoc);
    this.state[cacheBlock] = STATE_RESIDENT | STATE_WINDOW;
    // Overflow (cache still filling, or the target shrank) moves the oldest to main without a duel.
    while (this.windowSizes[set]! >= this.windowTarget) {
      const oldest = this.popWindow(set);
      this.state[oldest] = this.promoted(oldest);
    }
    this.ring[set * this.ringCapacity + ((this.windowHeads[set]! + this.windowSizes[set]!) % this.ringCapacity)] = cacheBlock;
    this.windowSizes[set]!++;
  }

  remove(cacheBlock: number): void {
    const state = this.state[cacheBlock]!;
    assert((state & STATE_RESIDENT) !== 0, 'tinylfu: removing a block that is not resident');
    if ((state & STATE_WINDOW) !== 0) this.dropFromWindow(cacheBlock);
    this.state[cacheBlock] = 0;
  }

  private promoted(cacheBlock: number): number {
    return this.tuning.keepCounter ? STATE_RESIDENT | (this.state[cacheBlock]! & COUNTER_MASK) : STATE_RESIDENT;
  }

  /** Advances the set's CLOCK hand to a main block with counter 0 that is evictable; NO_BLOCK if none. */
  private sweepMain(set: number, evictable: (cacheBlock: number) => boolean): number {
    const first = set * this.assoc;
    let hand = this.hands[set]!;
    const stepsMax = (COUNTER_MAX + 1) * this.assoc + 1;
    for (let step = 0; step < stepsMax; step++) {
      const block = first + hand;
      const state = this.state[block]!;
      if ((state & (STATE_RESIDENT | STATE_WINDOW)) === STATE_RESIDENT) {
        if ((state & COUNTER_MASK) === 0 && evictable(block)) {
          this.hands[set] = hand;
          return block;
        }
        if ((state & COUNTER_MASK) !== 0) this.state[block] = state - 1;
      }
      hand = hand + 1 === this.assoc ? 0 : hand + 1;
    }
    this.hands[set] = hand;
    return NO_BLOCK;
  }

  /** The main victim is being evicted: move the hand past it. */
  private take(set: number, cacheBlock: number): number {
    const slot = cacheBlock - set * this.assoc;
    this.hands[set] = slot + 1 === this.assoc ? 0 : slot + 1;
    return cacheBlock;
  }

  /** Rotates non-evictable blocks to the window's newest end until the oldest is evictable. */
  private oldestEvictableInWindow(set: number, evictable: (cacheBlock: number) => boolean): number {
    const size = this.windowSizes[set]!;
    for (let rotation = 0; rotation < size; rotation++) {
      const oldest = this.ring[set * this.ringCapacity + this.windowHeads[set]!]!;
      if (evictable(oldest)) return oldest;
      this.popWindow(set);
      this.ring[set * this.ringCapacity + ((this.windowHeads[set]! + this.windowSizes[set]!) % this.ringCapacity)] = oldest;
      this.windowSizes[set]!++;
    }
    return NO_BLOCK;
  }

  private popWindow(set: number): number {
    assert(this.windowSizes[set]! > 0, 'tinylfu: popping an empty window');
    const head = this.windowHeads[set]!;
    const block = this.ring[set * this.ringCapacity + head]!;
    this.windowHeads[set] = head + 1 === this.ringCapacity ? 0 : head + 1;
    this.windowSizes[set]!--;
    return block;
  }

  /** Invalidation of a window block: close the gap in the ring (rare: trims and write-around). */
  private dropFromWindow(cacheBlock: number): void {
    const set = Math.floor(cacheBlock / this.assoc);
    const base = set * this.ringCapacity;
    const size = this.windowSizes[set]!;
    let found = false;
    for (let offset = 0; offset < size; offset++) {
      const position = base + ((this.windowHeads[set]! + offset) % this.ringCapacity);
      if (found) this.ring[base + ((this.windowHeads[set]! + offset - 1) % this.ringCapacity)] = this.ring[position]!;
      else found = this.ring[position] === cacheBlock;
    }
    assert(found, 'tinylfu: window block missing from its ring');
    this.windowSizes[set]!--;
  }

  private countAccess(): void {
    if (++this.periodAccesses < this.climbPeriod) return;
    const hitRatio = this.periodHits / this.periodAccesses;
    this.periodAccesses = 0;
    this.periodHits = 0;
    if (this.previousHitRatio >= 0 && hitRatio < this.previousHitRatio) this.climbStep = -this.climbStep;
    this.previousHitRatio = hitRatio;
    const shareMax = this.tuning.windowPercentMax / 100;
    this.windowShare = Math.min(shareMax, Math.max(0, this.windowShare + this.climbStep));
    this.climbStep *= this.tuning.climbDecay;
    this.windowTarget = this.targetFor(this.windowShare);
  }
}
