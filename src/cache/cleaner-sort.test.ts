import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sortByOrigin } from './cleaner.js';

function reference(slots: number[], originOf: ArrayLike<number>): number[] {
  return [...slots].sort((a, b) => originOf[a]! - originOf[b]! || a - b);
}

test('sortByOrigin orders slots by origin block, ties by slot, packed or not', () => {
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const packed = new Uint32Array(5000).map(() => random(2 ** 31) * 2 + random(2)); // up to 2^32 - 1
  packed[10] = 2 ** 32 - 1;
  packed[11] = 2 ** 32 - 1; // a tie at the largest origin
  packed[12] = 0;
  const wide = Float64Array.from(packed, (origin, i) => (i % 3 === 0 ? origin * 4096 : origin)); // beyond 32 bits
  const slots = Array.from({ length: 3000 }, () => random(5000));
  slots.push(10, 11, 12, 4999);
  assert.deepEqual(sortByOrigin([...slots], packed), reference(slots, packed));
  assert.deepEqual(sortByOrigin([...slots], wide), reference(slots, wide));
  assert.deepEqual(sortByOrigin([], packed), []);
});
