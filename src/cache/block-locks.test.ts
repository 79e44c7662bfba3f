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
  assert.throws(() => locks.acquireRange(14, 16), /shared range over blocks with entries/);
  assert.throws(() => locks.releaseRange(a), /not held/);
});
