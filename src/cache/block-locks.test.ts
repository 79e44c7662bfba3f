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
