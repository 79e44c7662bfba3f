import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockIndex } from './block-index.js';
import { SetMapping } from './set-mapping.js';
import { Prng } from '../testing/prng.js';

test('a set-partitioned index agrees with a map through random inserts and deletes, sets full', () => {
  for (const [cacheBlocks, assoc] of [[64 * 16, 64], [8 * 4, 8], [100, 100]] as const) {
    const mapping = new SetMapping(cacheBlocks, assoc);
    const originOf = new Float64Array(cacheBlocks).fill(-1);
    const index = new BlockIndex(cacheBlocks, (slot) => originOf[slot]!, mapping);
    const model = new Map<number, number>();
    const freeBySet = Array.from({ length: mapping.sets }, (_, set) => Array.from({ length: assoc }, (_, i) => set * assoc + i));
    const prng = new Prng(cacheBlocks);
    for (let step = 0; step < 20_000; step++) {
      const originBlock = prng.below(4 * cacheBlocks) + (step % 7 === 0 ? 2 ** 40 : 0);
      const slot = model.get(originBlock);
      assert.equal(index.get(originBlock), slot ?? -1);
      if (slot !== undefined) {
        index.delete(originBlock);
        model.delete(originBlock);
        freeBySet[mapping.setOf(originBlock)]!.push(slot);
        continue;
      }
      const free = freeBySet[mapping.setOf(originBlock)]!;
      if (free.length === 0) continue; // the set is full (its table at the load limit)
      const target = free.pop()!;
      originOf[target] = originBlock;
      index.insert(originBlock, target);
      model.set(originBlock, target);
    }
    assert.equal(index.size, model.size);
    for (const [originBlock, slot] of model) assert.equal(index.get(originBlock), slot);
  }
});

test('a set-partitioned index refuses a cache block outside its origin block\'s set', () => {
  const mapping = new SetMapping(64, 8);
  const originOf = new Float64Array(64);
  const index = new BlockIndex(64, (slot) => originOf[slot]!, mapping);
  const originBlock = 12345;
  const wrong = ((mapping.setOf(originBlock) + 1) % mapping.sets) * 8;
  originOf[wrong] = originBlock;
  assert.throws(() => index.insert(originBlock, wrong), /outside its origin block's set/);
});

test('memory: 2.5 bytes per cache block at assoc 512 (u16 entries at load 0.8), 8 for one table', () => {
  const mapping = new SetMapping(512 * 100, 512);
  assert.equal(new BlockIndex(mapping.cacheBlocks, () => 0, mapping).memoryBytes / mapping.cacheBlocks, 2.5);
  assert.equal(new BlockIndex(100_000, () => 0).memoryBytes, 262_144 * 4);
});
