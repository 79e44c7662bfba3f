// Miss-ratio curves: the miss ratio of several policies over several cache
// sizes, computed in one pass over the trace, and their table rendering.
//
// Sizes are given as block counts or as percentages of the trace's footprint
// (its distinct blocks); each size is rounded down to a multiple of assoc.
import { BlockcacheError } from '../stdx/errors.js';
import { countFootprint, SimConfig, simulateMany } from './simulate.js';
import { SimResult } from './replayer.js';

export interface CurveSize {
  /** A block count, or a percentage of the footprint when `percent` is true. */
  readonly value: number;
  readonly percent: boolean;
}

export interface CurvePoint extends SimResult {
  readonly policy: string;
  readonly cacheBlocks: number;
  /** cacheBlocks as a percentage of the footprint. */
  readonly footprintPercent: number;
}

export interface CurveOptions {
  readonly sizes: readonly CurveSize[];
  readonly policies: readonly string[];
  readonly blockBytes: number;
  /** Blocks per set, 'full', or 'default' (ASSOC_DEFAULT when it divides the size, else full). */
  readonly assoc: number | 'full';
}

export async function missRatioCurve(tracePath: string, options: CurveOptions): Promise<{ footprint: number; points: CurvePoint[] }> {
  const footprint = await countFootprint(tracePath, options.blockBytes);
  const sizes = options.sizes.map((size) => resolveSize(size, footprint, options.assoc));
  const configs: SimConfig[] = [];
  for (const policy of options.policies) {
    for (const cacheBlocks of sizes) configs.push({ cacheBlocks, blockBytes: options.blockBytes, assoc: options.assoc, policy });
  }
  const results = await simulateMany(tracePath, configs);
  const points = results.map((result, index) => ({
    ...result,
    policy: configs[index]!.policy,
    cacheBlocks: configs[index]!.cacheBlocks,
    footprintPercent: footprint === 0 ? 0 : (100 * configs[index]!.cacheBlocks) / footprint,
  }));
  return { footprint, points };
}

function resolveSize(size: CurveSize, footprint: number, assoc: number | 'full'): number {
  let blocks = size.percent ? Math.floor((footprint * size.value) / 100) : size.value;
  if (assoc !== 'full') blocks = Math.floor(blocks / assoc) * assoc;
  const smallest = assoc === 'full' ? 1 : assoc;
  if (blocks < smallest) {
    throw new BlockcacheError('BAD_ARGUMENT', `curve size ${size.value}${size.percent ? '%' : ''} is below ${smallest} block(s) (footprint ${footprint} blocks)`);
  }
  return blocks;
}

/** A plain-text table: one row per size, one column per policy (miss ratio, read miss ratio). */
export function formatCurveTable(points: readonly CurvePoint[], footprint: number): string {
  const policies = [...new Set(points.map((point) => point.policy))];
  const sizes = [...new Set(points.map((point) => point.cacheBlocks))];
  const header = ['blocks', '% footprint', ...policies.map((policy) => `${policy} miss (read)`)];
  const rows = sizes.map((cacheBlocks) => {
    const first = points.find((point) => point.cacheBlocks === cacheBlocks)!;
    const cells = policies.map((policy) => {
      const point = points.find((candidate) => candidate.policy === policy && candidate.cacheBlocks === cacheBlocks)!;
      return `${point.missRatio.toFixed(4)} (${point.readMissRatio.toFixed(4)})`;
    });
    return [String(cacheBlocks), first.footprintPercent.toFixed(1), ...cells];
  });
  return `footprint: ${footprint} blocks\n${formatTable([header, ...rows])}`;
}

/** Left-aligned first column, right-aligned others, two spaces apart. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  '))
    .join('\n') + '\n';
}
