// Every registered policy honours the engine's contract: victims come from the
// requested set and pass `evictable`; a policy rebuilt by insert() for every
// resident block (runtime switch) keeps working; unknown names are rejected.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBlockcacheError } from '../stdx/errors.js';
import { NO_BLOCK, ReplacementPolicy } from './policy.js';
import { createPolicy, DEFAULT_POLICY, POLICY_NAMES } from './registry.js';

/** A tiny engine: origin -> cache block maps and a deterministic workload (xorshift). */
function drive(policy: ReplacementPolicy, cacheBlocks: number, assoc: number, steps: number, seed: number, resident: Map<number, number>): number {
  const originOf = new Map<number, number>();
  for (const [origin, block] of resident) originOf.set(block, origin);
  let state = seed;
  const random = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  let hits = 0;
  for (let step = 0; step < steps; step++) {
    const origin = random() < 0.6 ? Math.floor(random() * cacheBlocks) : Math.floor(random() * cacheBlocks * 8);
    const known = resident.get(origin);
    if (known !== undefined) {
      policy.hit(known);
      hits++;
      continue;
    }
    const set = origin % (cacheBlocks / assoc);
    if (!policy.admit(set, origin)) continue;
    let block = -1;
    for (let slot = set * assoc; slot < (set + 1) * assoc; slot++) if (!originOf.has(slot)) { block = slot; break; }
    if (block < 0) {
      const busy = step % 3 === 0 ? (cacheBlock: number): boolean => cacheBlock % 4 !== 0 : (): boolean => true;
      block = policy.victim(set, origin, busy);
      if (block === NO_BLOCK) continue;
      assert.equal(Math.floor(block / assoc), set, `${policy.name}: victim outside its set`);
      assert.ok(busy(block), `${policy.name}: victim rejected by evictable`);
      resident.delete(originOf.get(block)!);
      policy.remove(block, true);
    }
    originOf.set(block, origin);
    resident.set(origin, block);
    policy.insert(block, origin);
  }
  return hits;
}

for (const name of POLICY_NAMES) {
  for (const assoc of [16, 128]) {
    test(`policy ${name} (assoc ${assoc}/128): victims respect sets and evictable; switching policy keeps the cache`, () => {
      const resident = new Map<number, number>();
      const first = createPolicy(name, { cacheBlocks: 128, assoc });
      assert.ok(drive(first, 128, assoc, 20_000, 12345, resident) > 0);
      for (const other of POLICY_NAMES) {
        const rebuilt = createPolicy(other, { cacheBlocks: 128, assoc });
        for (const [origin, block] of resident) rebuilt.insert(block, origin);
        const copy = new Map(resident);
        drive(rebuilt, 128, assoc, 2_000, 777, copy);
      }
      assert.ok(first.memoryBytes > 0);
    });
  }
}

test('registry: unknown names are BAD_ARGUMENT errors listing the valid ones', () => {
  assert.ok(POLICY_NAMES.includes(DEFAULT_POLICY));
  assert.ok(!POLICY_NAMES.includes('opt'));
  assert.throws(
    () => createPolicy('belady', { cacheBlocks: 8, assoc: 8 }),
    (error: unknown) => isBlockcacheError(error, 'BAD_ARGUMENT') && /valid: .*lru/.test((error as Error).message),
  );
});
