// CLOCK: one reference bit per slot and one hand per set sweeping the set's
// slots in cache-block order.
//
// A new block enters with its bit clear; a hit sets it. To choose a victim the
// hand clears set bits and advances until it finds a clear bit on an evictable
// resident slot; that slot is the victim and the hand moves one past it. The
// replacement lands in the victim's slot, so slot order is the clock order.
// State: 2 bytes per block + 4 per set. Pure decisions, no I/O.
import { NO_BLOCK, PolicyGeometry, ReplacementPolicy } from './policy.js';

const BIT_RESIDENT = 1;
const BIT_REFERENCED = 2;
/** A full sweep clears every bit, so two sweeps (plus one step) always end unless nothing is evictable. */
const SWEEPS_MAX = 2;

export class ClockPolicy implements ReplacementPolicy {
  readonly name = 'clock';
  private readonly state: Uint8Array;
  private readonly hands: Uint32Array;
  private readonly assoc: number;

  constructor(geometry: PolicyGeometry) {
    this.assoc = geometry.assoc;
    this.state = new Uint8Array(geometry.cacheBlocks);
    this.hands = new Uint32Array(geometry.cacheBlocks / geometry.assoc);
  }

  get memoryBytes(): number {
    return this.state.byteLength + this.hands.byteLength;
  }

  hit(cacheBlock: number): void {
    this.state[cacheBlock]! |= BIT_REFERENCED;
  }

  admit(): boolean {
    return true;
  }

  victim(set: number, _originBlock: number, evictable: (cacheBlock: number) => boolean): number {
    const first = set * this.assoc;
    let hand = this.hands[set]!;
    for (let step = 0; step <= SWEEPS_MAX * this.assoc; step++) {
      const block = first + hand;
      hand = hand + 1 === this.assoc ? 0 : hand + 1;
      const state = this.state[block]!;
      if ((state & BIT_RESIDENT) === 0) continue;
      if ((state & BIT_REFERENCED) !== 0) {
        this.state[block] = BIT_RESIDENT;
        continue;
      }
      if (!evictable(block)) continue;
      this.hands[set] = hand;
      return block;
    }
    this.hands[set] = hand;
    return NO_BLOCK;
  }

  insert(cacheBlock: number): void {
    this.state[cacheBlock] = BIT_RESIDENT;
  }

  remove(cacheBlock: number): void {
    this.state[cacheBlock] = 0;
  }
}
