// The simulator's entry points: replay a trace file through one or several
// cache configurations (policy, size, associativity) in a single pass.
//
// Online policies stream the file. `opt` needs every access's next use, so
// when it is asked for, the accesses are first loaded into a compact
// in-memory array (9 bytes per access) and next uses computed backwards.
import { NEVER_AGAIN, OptPolicy } from '../policies/opt.js';
import { createPolicy } from '../policies/registry.js';
import { BlockcacheError } from '../stdx/errors.js';
import { Replayer, SimResult } from './replayer.js';
import { forEachBlock, readTrace } from './trace-reader.js';

export type { SimResult } from './replayer.js';

/** The offline optimum's name: accepted by the simulator only. */
export const OPT_POLICY = 'opt';

export interface SimConfig {
  readonly cacheBlocks: number;
  readonly blockBytes: number;
  /** Blocks per set, or 'full' for one set. */
  readonly assoc: number | 'full';
  readonly policy: string;
}

/** Replays the trace at `tracePath` through one configuration. */
export async function simulate(tracePath: string, config: SimConfig): Promise<SimResult> {
  const [result] = await simulateMany(tracePath, [config]);
  return result!;
}

/** Replays the trace once, feeding every configuration (all must share blockBytes). */
export async function simulateMany(tracePath: string, configs: readonly SimConfig[]): Promise<SimResult[]> {
  if (configs.length === 0) return [];
  const blockBytes = configs[0]!.blockBytes;
  if (configs.some((config) => config.blockBytes !== blockBytes)) {
    throw new BlockcacheError('BAD_ARGUMENT', 'all simulated configurations must use the same block size');
  }
  const replayers = configs.map(makeReplayer);
  if (!configs.some((config) => config.policy === OPT_POLICY)) {
    await readTrace(tracePath, (isWrite, offsetBytes, lengthBytes) => {
      forEachBlock(offsetBytes, lengthBytes, blockBytes, (originBlock) => {
        for (const replayer of replayers) replayer.access(originBlock, isWrite);
      });
    });
    return replayers.map((replayer) => replayer.result());
  }
  const accesses = await loadAccesses(tracePath, blockBytes);
  const nextUses = computeNextUses(accesses);
  for (const replayer of replayers) {
    const opt = replayer.policy instanceof OptPolicy ? replayer.policy : null;
    for (let position = 0; position < accesses.count; position++) {
      if (opt !== null) opt.setNextUse(nextUses[position]!);
      replayer.access(accesses.originBlocks[position]!, accesses.writes[position] === 1);
    }
  }
  return replayers.map((replayer) => replayer.result());
}

function makeReplayer(config: SimConfig): Replayer {
  if (!Number.isSafeInteger(config.cacheBlocks) || config.cacheBlocks < 1) {
    throw new BlockcacheError('BAD_ARGUMENT', `cache blocks must be a positive whole number, got ${config.cacheBlocks}`);
  }
  const assoc = config.assoc === 'full' ? config.cacheBlocks : config.assoc;
  if (config.cacheBlocks % assoc !== 0) {
    throw new BlockcacheError('BAD_ARGUMENT', `assoc ${assoc} does not divide cache blocks ${config.cacheBlocks}`);
  }
  const geometry = { cacheBlocks: config.cacheBlocks, assoc };
  const policy = config.policy === OPT_POLICY ? new OptPolicy(geometry) : createPolicy(config.policy, geometry);
  return new Replayer(config.cacheBlocks, assoc, policy);
}

export interface AccessArray {
  count: number;
  originBlocks: Float64Array;
  writes: Uint8Array;
}

const INITIAL_ACCESSES = 1 << 16;

/** Loads every block access of the trace into typed arrays (grown by doubling). */
export async function loadAccesses(tracePath: string, blockBytes: number): Promise<AccessArray> {
  const accesses: AccessArray = { count: 0, originBlocks: new Float64Array(INITIAL_ACCESSES), writes: new Uint8Array(INITIAL_ACCESSES) };
  await readTrace(tracePath, (isWrite, offsetBytes, lengthBytes) => {
    forEachBlock(offsetBytes, lengthBytes, blockBytes, (originBlock) => {
      if (accesses.count === accesses.originBlocks.length) grow(accesses);
      accesses.originBlocks[accesses.count] = originBlock;
      accesses.writes[accesses.count] = isWrite ? 1 : 0;
      accesses.count++;
    });
  });
  return accesses;
}

function grow(accesses: AccessArray): void {
  const originBlocks = new Float64Array(accesses.originBlocks.length * 2);
  originBlocks.set(accesses.originBlocks);
  const writes = new Uint8Array(accesses.writes.length * 2);
  writes.set(accesses.writes);
  accesses.originBlocks = originBlocks;
  accesses.writes = writes;
}

/** nextUses[i] = position of the next access to the same block, or NEVER_AGAIN. */
export function computeNextUses(accesses: AccessArray): Float64Array {
  const nextUses = new Float64Array(accesses.count);
  const lastSeen = new Map<number, number>();
  for (let position = accesses.count - 1; position >= 0; position--) {
    const originBlock = accesses.originBlocks[position]!;
    nextUses[position] = lastSeen.get(originBlock) ?? NEVER_AGAIN;
    lastSeen.set(originBlock, position);
  }
  return nextUses;
}

/** Number of distinct cache blocks the trace touches (its footprint). */
export async function countFootprint(tracePath: string, blockBytes: number): Promise<number> {
  const seen = new Set<number>();
  await readTrace(tracePath, (_isWrite, offsetBytes, lengthBytes) => {
    forEachBlock(offsetBytes, lengthBytes, blockBytes, (originBlock) => seen.add(originBlock));
  });
  return seen.size;
}
