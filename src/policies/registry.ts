// The policies users can choose, by name, and the default.
//
// `opt` is not here: it needs the future and is built only by the simulator.
import { ArcPolicy } from './arc.js';
import { ClockPolicy } from './clock.js';
import { FifoPolicy } from './fifo.js';
import { FreqAgePolicy } from './freqage.js';
import { FreqCtxPolicy } from './freqctx.js';
import { LruPolicy } from './lru.js';
import { PolicyFactory, PolicyGeometry, ReplacementPolicy } from './policy.js';
import { S3FifoPolicy } from './s3fifo.js';
import { TinyLfuPolicy } from './tinylfu.js';
import { TwoQPolicy } from './two-q.js';
import { assert } from '../stdx/assert.js';
import { BlockcacheError } from '../stdx/errors.js';

const FACTORIES: Readonly<Record<string, PolicyFactory>> = {
  freqctx: (geometry) => new FreqCtxPolicy(geometry),
  freqage: (geometry) => new FreqAgePolicy(geometry),
  tinylfu: (geometry) => new TinyLfuPolicy(geometry),
  lru: (geometry) => new LruPolicy(geometry),
  fifo: (geometry) => new FifoPolicy(geometry),
  clock: (geometry) => new ClockPolicy(geometry),
  '2q': (geometry) => new TwoQPolicy(geometry),
  arc: (geometry) => new ArcPolicy(geometry),
  s3fifo: (geometry) => new S3FifoPolicy(geometry),
};

/** Online policies a user may select (create --policy, runtime switch, sim --policy). */
export const POLICY_NAMES: readonly string[] = Object.freeze(Object.keys(FACTORIES));

/** The policy a new cache gets: see docs/POLICIES.md for why. */
export const DEFAULT_POLICY = 'freqctx';

assert(POLICY_NAMES.includes(DEFAULT_POLICY), 'the default policy must be registered');

export function createPolicy(name: string, geometry: PolicyGeometry): ReplacementPolicy {
  const factory = Object.hasOwn(FACTORIES, name) ? FACTORIES[name] : undefined;
  if (factory === undefined) {
    throw new BlockcacheError('BAD_ARGUMENT', `unknown policy '${name}' (valid: ${POLICY_NAMES.join(', ')})`);
  }
  if (!(geometry.cacheBlocks > 0 && geometry.assoc > 0 && geometry.cacheBlocks % geometry.assoc === 0)) {
    throw new BlockcacheError('BAD_ARGUMENT', `policy geometry: assoc ${geometry.assoc} must divide cache blocks ${geometry.cacheBlocks}`);
  }
  return factory(geometry);
}
