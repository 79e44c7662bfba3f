// The pace of threshold cleaning while clients are busy (writeback-pace.ts), and
// the rate limiter's retune that carries it from one turn to the next.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { paceBytesPerSecond, paceCeilingBlocks, PaceInput } from './writeback-pace.js';
import { RateLimiter } from './rate-limiter.js';
import { DIRTY_PACE_BYTES_PER_SECOND_MIN } from '../constants.js';

const BLOCK = 4096;
/** 10,000 blocks, threshold 20% (2,000), target 1,900, ceiling 2,000 + 4,000. */
const BASE: PaceInput = {
  dirtyBlocks: 5000, thresholdBlocks: 2000, targetBlocks: 1900, cacheBlocks: 10_000, blockBytes: BLOCK, paceMs: 30_000, clientsBusy: true,
};

test('the ceiling is half-way from the threshold to a full cache', () => {
  assert.equal(paceCeilingBlocks(2000, 10_000), 6000);
  assert.equal(paceCeilingBlocks(0, 10_001), 5001);
  assert.equal(paceCeilingBlocks(10_000, 10_000), 10_000);
});

test('while clients are busy the pace is the excess over the target per pace period', () => {
  // (5000 - 1900) blocks over 30 s: 423 KiB/s is under the floor.
  assert.equal(paceBytesPerSecond(BASE), DIRTY_PACE_BYTES_PER_SECOND_MIN);
  const fast = paceBytesPerSecond({ ...BASE, paceMs: 2000 });
  assert.equal(fast, ((5000 - 1900) * BLOCK * 1000) / 2000);
  // Twice the excess, twice the pace.
  const near = paceBytesPerSecond({ ...BASE, dirtyBlocks: 3000, paceMs: 2000 });
  const further = paceBytesPerSecond({ ...BASE, dirtyBlocks: 4100, paceMs: 2000 });
  assert.equal(further, 2 * near);
});

test('no pacing when clients are idle, with a pace of 0, at or under the target, or at and above the ceiling', () => {
  assert.equal(paceBytesPerSecond({ ...BASE, clientsBusy: false }), 0);
  assert.equal(paceBytesPerSecond({ ...BASE, dirtyBlocks: 1900 }), 0);
  assert.equal(paceBytesPerSecond({ ...BASE, dirtyBlocks: 1000 }), 0);
  assert.equal(paceBytesPerSecond({ ...BASE, dirtyBlocks: 1901 }), DIRTY_PACE_BYTES_PER_SECOND_MIN);
  assert.equal(paceBytesPerSecond({ ...BASE, paceMs: 0 }), 0);
  assert.equal(paceBytesPerSecond({ ...BASE, dirtyBlocks: 6000 }), 0);
  assert.equal(paceBytesPerSecond({ ...BASE, dirtyBlocks: 9000 }), 0);
  assert.ok(paceBytesPerSecond({ ...BASE, dirtyBlocks: 5999 }) > 0);
});

test('retune keeps what the bucket owes, at the new rate', () => {
  const limiter = new RateLimiter(1_000_000, 0);
  limiter.take(2_000_000, 0); // 2 s of debt at 1 MB/s
  assert.equal(limiter.delayMs(0), 2000);
  limiter.retune(4_000_000, 0);
  assert.equal(limiter.delayMs(0), 500, 'the same debt at four times the rate');
  limiter.retune(4_000_000, 500);
  assert.equal(limiter.delayMs(500), 0);
  // Savings are capped at the new rate's burst.
  limiter.retune(1000, 10_000);
  limiter.take(1000, 10_000);
  assert.ok(limiter.delayMs(10_000) >= 900, 'no savings carried over from the faster rate');
});
