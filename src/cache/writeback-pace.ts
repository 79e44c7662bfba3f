// How fast threshold cleaning may write back while clients are busy (bcache's
// proportional writeback rate, without its integral term). Above the dirty
// threshold the cleaner used to write back at full speed, which on a small
// machine takes the CPU and the cache device from the very writes that made
// the blocks dirty. Now, while clients are busy, it writes back the excess over
// its target at excess / pace per second (at least DIRTY_PACE_BYTES_PER_SECOND_MIN):
// a burst of writes is absorbed at full speed and cleaned over the following
// seconds, faster the further it overshoots. Pacing stops when clients go idle,
// when dirty blocks pass the ceiling (half-way from the threshold to a full
// cache), at the target (an age round below it is not paced), or with a pace of
// 0. Room-making and flushes are never paced.
// Pure: no I/O, no clock.
import { DIRTY_PACE_BYTES_PER_SECOND_MIN } from '../constants.js';
import { assert } from '../stdx/assert.js';

export interface PaceInput {
  readonly dirtyBlocks: number;
  /** Dirty blocks above which threshold cleaning runs. */
  readonly thresholdBlocks: number;
  /** Dirty blocks threshold cleaning stops at (the threshold less its hysteresis). */
  readonly targetBlocks: number;
  readonly cacheBlocks: number;
  readonly blockBytes: number;
  /** The dirty-pace setting in milliseconds; 0 = never paced. */
  readonly paceMs: number;
  /** Client requests arrived recently. */
  readonly clientsBusy: boolean;
}

/** Dirty blocks from which cleaning runs at full speed even while clients are busy. */
export function paceCeilingBlocks(thresholdBlocks: number, cacheBlocks: number): number {
  return thresholdBlocks + Math.ceil((cacheBlocks - thresholdBlocks) / 2);
}

/** Bytes per second threshold cleaning may write back now; 0 = not paced (full speed). */
export function paceBytesPerSecond(input: PaceInput): number {
  assert(input.targetBlocks <= input.thresholdBlocks && input.thresholdBlocks <= input.cacheBlocks, 'pace: bad thresholds');
  if (input.paceMs === 0 || !input.clientsBusy) return 0;
  if (input.dirtyBlocks <= input.targetBlocks || input.dirtyBlocks >= paceCeilingBlocks(input.thresholdBlocks, input.cacheBlocks)) return 0;
  const excessBytes = (input.dirtyBlocks - input.targetBlocks) * input.blockBytes;
  return Math.max(DIRTY_PACE_BYTES_PER_SECOND_MIN, (excessBytes * 1000) / input.paceMs);
}
