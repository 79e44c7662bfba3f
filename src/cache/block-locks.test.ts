import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockLocks } from './block-locks.js';

test('readers share a block, a writer excludes everyone, waiters are served in order', async () => {
  const locks = new BlockLocks();
  const events: string[] = [];
  assert.equal(locks.acquire(1, false), undefined);
  assert.equal(locks.acquire(1, false), undefined);
  const writer = locks.acquire(1, true)!.then(() => events.push('writer'));
  // A reader arriving after a waiting writer queues behind it (no writer starvation).
  const lateReader = locks.acquire(1, false)!.then(() => events.push('reader'));
  assert.ok(locks.isBusy(1));
  assert.ok(!locks.isBusy(2));
  locks.release(1, false);
  await Promise.resolve();
  assert.deepEqual(events, []);
  locks.release(1, false);
  await writer;
  assert.deepEqual(events, ['writer']);
  locks.release(1, true);
  await lateReader;
  assert.deepEqual(events, ['writer', 'reader']);
  locks.release(1, false);
  assert.ok(!locks.isBusy(1));
  assert.equal(locks.lockedBlocks, 0);
});

test('releasing a lock not held is a programmer error', () => {
  const locks = new BlockLocks();
  assert.throws(() => locks.release(5, true), /unlocked block/);
  locks.acquire(5, false);
  assert.throws(() => locks.release(5, true), /exclusive lock not held/);
});

test('shared ranges: readers share them, a writer inside waits for every range over its block, blocks with entries refuse a range', async () => {
  const locks = new BlockLocks();
  const events: string[] = [];
  const a = locks.acquireRange(10, 20);
  const b = locks.acquireRange(15, 30); // overlapping shared ranges are fine
  assert.ok(locks.isBusy(10) && locks.isBusy(29) && !locks.isBusy(9) && !locks.isBusy(30));
  assert.equal(locks.acquire(12, false), undefined, 'a reader inside a range is granted at once');
  const writer = locks.acquire(17, true)!.then(() => events.push('writer 17'));
  const lateReader = locks.acquire(17, false)!.then(() => events.push('reader 17'));
  assert.equal(locks.rangeAvailable(16, 18), false, 'block 17 has an entry (a waiter)');
  assert.equal(locks.rangeAvailable(40, 50), true);
  locks.releaseRange(a);
  await Promise.resolve();
  assert.deepEqual(events, [], 'range b still holds block 17');
  locks.releaseRange(b);
  await writer;
  assert.deepEqual(events, ['writer 17']);
  locks.release(17, true);
  await lateReader;
  locks.release(17, false);
  assert.ok(locks.isBusy(12), 'the reader of block 12 still holds it after the range went');
  locks.release(12, false);
  assert.equal(locks.lockedBlocks, 0);
  assert.ok(!locks.isBusy(15));
  assert.equal(locks.acquire(15, true), undefined, 'free again');
  assert.throws(() => locks.acquireRange(14, 16), /range over blocks with entries/);
  assert.throws(() => locks.releaseRange(a), /not held/);
});

test('exclusive ranges: everyone inside waits for the range, in arrival order; no other range may overlap one', async () => {
  const locks = new BlockLocks();
  const events: string[] = [];
  const run = locks.acquireRange(100, 110, true);
  assert.ok(locks.isBusy(100) && locks.isBusy(109) && !locks.isBusy(99) && !locks.isBusy(110));
  assert.equal(locks.acquire(110, true), undefined, 'a block just past the range is free');
  const reader = locks.acquire(105, false)!.then(() => events.push('reader 105'));
  const writer = locks.acquire(105, true)!.then(() => events.push('writer 105'));
  const other = locks.acquire(100, false)!.then(() => events.push('reader 100'));
  assert.equal(locks.rangeAvailable(90, 101), false, 'overlaps the exclusive range');
  assert.equal(locks.rangeAvailable(109, 120, false), false, 'a shared range may not overlap it either');
  assert.equal(locks.rangeAvailable(111, 120, true), true);
  assert.throws(() => locks.acquireRange(95, 101), /conflicting ranges/);
  const shared = locks.acquireRange(120, 130);
  assert.equal(locks.rangeAvailable(125, 140, true), false, 'an exclusive range may not overlap a shared one');
  assert.equal(locks.rangeAvailable(125, 140, false), true, 'shared ranges overlap each other');
  await Promise.resolve();
  assert.deepEqual(events, [], 'the range holds every block');
  locks.releaseRange(run);
  await reader;
  await other;
  assert.deepEqual([...events].sort(), ['reader 100', 'reader 105']);
  locks.release(105, false);
  await writer;
  assert.equal(events[2], 'writer 105', 'the writer queued behind the reader gets the block next');
  locks.release(105, true);
  locks.release(100, false);
  locks.release(110, true);
  locks.releaseRange(shared);
  assert.equal(locks.lockedBlocks, 0);
  assert.ok(!locks.isBusy(105));
  assert.throws(() => locks.releaseRange(run), /not held/);
});
