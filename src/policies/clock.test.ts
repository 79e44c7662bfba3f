// CLOCK follows REFERENCE.md literally: the hand clears set bits, evicts the
// first clear one and stops one past it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClockPolicy } from './clock.js';

test('clock: second chance, then the hand moves one past the victim', () => {
  const policy = new ClockPolicy({ cacheBlocks: 3, assoc: 3 });
  for (let block = 0; block < 3; block++) policy.insert(block);
  policy.hit(0);
  const all = (): boolean => true;
  assert.equal(policy.victim(0, 99, all), 1); // 0 had its bit: cleared and skipped
  policy.remove(1);
  policy.insert(1);
  assert.equal(policy.victim(0, 98, all), 2);
  policy.remove(2);
  policy.insert(2);
  assert.equal(policy.victim(0, 97, all), 0); // bit cleared on the first sweep
  assert.equal(policy.victim(0, 97, (block) => block !== 1), 2); // busy blocks are skipped
});
