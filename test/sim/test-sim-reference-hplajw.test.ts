// The classic policies reproduce REFERENCE.md's numbers for hplajw_1week.csv
// at all four sizes, fully associative, to 4 decimals (overall and reads).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_POLICY } from '../../src/policies/registry.js';
import { SimConfig, simulateMany } from '../../src/sim/simulate.js';
import { haveTrace, tracePath } from './traces.js';

const SIZES = [73, 367, 734, 1836];
const REFERENCE: Record<string, [number, number][]> = {
  lru: [[0.5631, 0.8018], [0.3763, 0.7514], [0.2791, 0.7036], [0.175, 0.4792]],
  fifo: [[0.5785, 0.8073], [0.3986, 0.7539], [0.3072, 0.7021], [0.2009, 0.518]],
  clock: [[0.5567, 0.8012], [0.3683, 0.7479], [0.2766, 0.6995], [0.1746, 0.479]],
  arc: [[0.5139, 0.804], [0.3347, 0.738], [0.2483, 0.6392], [0.1767, 0.4657]],
  '2q': [[0.5107, 0.8035], [0.3259, 0.7212], [0.2625, 0.6564], [0.1892, 0.4938]],
  s3fifo: [[0.4989, 0.8027], [0.314, 0.7015], [0.2444, 0.6249], [0.1784, 0.4682]],
  opt: [[0.4134, 0.7646], [0.2403, 0.6327], [0.1778, 0.4832], [0.1186, 0.3129]],
};
const TRACE = 'hplajw_1week.csv';

test('test-sim-reference-hplajw: every classic policy and opt match REFERENCE.md to 4 decimals', { skip: !haveTrace(TRACE) && 'shared traces not found' }, async () => {
  const policies = Object.keys(REFERENCE);
  const configs: SimConfig[] = policies.flatMap((policy) => SIZES.map((cacheBlocks) => ({ cacheBlocks, blockBytes: 4096, assoc: 'full' as const, policy })));
  const results = await simulateMany(tracePath(TRACE), configs);
  results.forEach((result, index) => {
    const { policy, cacheBlocks } = configs[index]!;
    const [missRatio, readMissRatio] = REFERENCE[policy]![SIZES.indexOf(cacheBlocks)]!;
    assert.equal(result.accesses, 73671);
    assert.equal(result.missRatio.toFixed(4), missRatio.toFixed(4), `${policy} at ${cacheBlocks} blocks`);
    assert.equal(result.readMissRatio.toFixed(4), readMissRatio.toFixed(4), `${policy} at ${cacheBlocks} blocks (reads)`);
  });
});

test('test-sim-reference-hplajw: the default policy is never worse than LRU', { skip: !haveTrace(TRACE) && 'shared traces not found' }, async () => {
  const configs: SimConfig[] = SIZES.map((cacheBlocks) => ({ cacheBlocks, blockBytes: 4096, assoc: 'full' as const, policy: DEFAULT_POLICY }));
  const results = await simulateMany(tracePath(TRACE), configs);
  results.forEach((result, index) => assert.ok(result.missRatio <= REFERENCE.lru![index]![0] + 0.00005, `${DEFAULT_POLICY} at ${SIZES[index]}: ${result.missRatio}`));
});
