// `blockcache sim`: replays a block trace through the real mapping and policy
// code (metadata only, no I/O) and prints miss ratios, per CONTRACT.md; with
// --curve, a miss-ratio curve over several sizes (table, JSON, or SVG file).
import { writeFile } from 'node:fs/promises';
import { ASSOC_DEFAULT, BLOCK_BYTES_DEFAULT, BLOCK_BYTES_MAX, BLOCK_BYTES_MIN, CACHE_BLOCKS_MAX } from '../../constants.js';
import { DEFAULT_POLICY, POLICY_NAMES } from '../../policies/registry.js';
import { CurveSize, formatCurveTable, formatTable, missRatioCurve } from '../../sim/curve.js';
import { OPT_POLICY, simulate } from '../../sim/simulate.js';
import { curveSvg } from '../../sim/svg.js';
import { isPowerOfTwo } from '../../stdx/assert.js';
import { BlockcacheError } from '../../stdx/errors.js';
import { Command, parseCount, parseOptions, parseSize, required, UsageError } from '../command.js';

const HELP = `usage: blockcache sim --trace FILE --cache-blocks N [--policy NAME] [--block-size 4K] [--assoc N|full] [--json]
       blockcache sim --trace FILE --curve SIZES [--policy NAME[,NAME...]] [--block-size 4K] [--assoc N|full] [--json] [--svg FILE]
Replays a trace (op,offset_bytes,length_bytes lines; # comments) through the real policy and
mapping code, writeback and write-allocate, one access per cache block touched.
  --trace FILE        the trace to replay
  --cache-blocks N    cache size in cache blocks
  --policy NAME       ${POLICY_NAMES.join(', ')}, or ${OPT_POLICY} (offline optimum); default ${DEFAULT_POLICY}
                      with --curve: a comma list, or 'all' (every policy and ${OPT_POLICY})
  --block-size SIZE   cache block size, a power of two from 4K to 1M (default 4K)
  --assoc N|full      blocks per set, a power of two dividing the size, or full; default ${ASSOC_DEFAULT}
                      (as 'create') when it divides the size, else full
  --curve SIZES       comma list of sizes in blocks or percent of the trace footprint (e.g. 1%,5%,10%,25%)
  --svg FILE          with --curve: also write the curve as an SVG plot
  --json              one JSON object (with --curve: an array of objects with policy and cacheBlocks)`;

const OPTIONS = {
  trace: { type: 'string' },
  'cache-blocks': { type: 'string' },
  policy: { type: 'string' },
  'block-size': { type: 'string' },
  assoc: { type: 'string' },
  curve: { type: 'string' },
  svg: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export const simCommand: Command = {
  name: 'sim',
  summary: 'replay a block trace through a policy and print miss ratios (and miss-ratio curves)',
  help: HELP,
  async run(argv: string[]): Promise<number> {
    const { values } = parseOptions(argv, OPTIONS);
    const trace = required<string>(values.trace, '--trace');
    const blockBytes = parseBlockBytes(values['block-size']);
    const assocText: string | undefined = values.assoc;
    if (values.curve !== undefined) return runCurve(trace, blockBytes, assocText, values);
    if (values.svg !== undefined) throw new UsageError('--svg needs --curve');
    const cacheBlocks = parseCount(required<string>(values['cache-blocks'], '--cache-blocks'), '--cache-blocks', 1, CACHE_BLOCKS_MAX);
    const policy = parsePolicy(values.policy ?? DEFAULT_POLICY);
    const assoc = parseAssoc(assocText, cacheBlocks);
    const result = await simulate(trace, { cacheBlocks, blockBytes, assoc, policy });
    if (values.json === true) {
      const { accesses, misses, missRatio, readAccesses, readMisses, readMissRatio } = result;
      process.stdout.write(`${JSON.stringify({ accesses, misses, missRatio, readAccesses, readMisses, readMissRatio })}\n`);
      return 0;
    }
    process.stdout.write(
      `policy ${policy}, ${cacheBlocks} blocks of ${blockBytes} bytes, assoc ${assoc === 'full' ? 'full' : assoc}\n` +
        formatTable([
          ['', 'accesses', 'misses', 'miss ratio'],
          ['all', String(result.accesses), String(result.misses), result.missRatio.toFixed(4)],
          ['reads', String(result.readAccesses), String(result.readMisses), result.readMissRatio.toFixed(4)],
        ]),
    );
    return 0;
  },
};

async function runCurve(trace: string, blockBytes: number, assocText: string | undefined, values: Record<string, unknown>): Promise<number> {
  if (values['cache-blocks'] !== undefined) throw new UsageError('give either --cache-blocks or --curve, not both');
  const sizes = parseCurveSizes(values.curve as string);
  const policyText = (values.policy as string | undefined) ?? DEFAULT_POLICY;
  const policies = policyText === 'all' ? [...POLICY_NAMES, OPT_POLICY] : policyText.split(',').map((name) => parsePolicy(name.trim()));
  let assoc: number | 'full' = 'full';
  if (assocText !== undefined && assocText !== 'full') assoc = parseAssocNumber(assocText);
  const { footprint, points } = await missRatioCurve(trace, { sizes, policies, blockBytes, assoc });
  if (values.svg !== undefined) {
    const title = `miss ratio, ${trace.split('/').pop()} (${blockBytes / 1024} KiB blocks, assoc ${assoc})`;
    try {
      await writeFile(values.svg as string, curveSvg(points, title));
    } catch (error) {
      throw new BlockcacheError('BAD_ARGUMENT', `cannot write ${values.svg as string}: ${(error as Error).message}`, { cause: error });
    }
  }
  if (values.json === true) {
    const rows = points.map(({ policy, cacheBlocks, footprintPercent, accesses, misses, missRatio, readAccesses, readMisses, readMissRatio }) =>
      ({ policy, cacheBlocks, footprintPercent, accesses, misses, missRatio, readAccesses, readMisses, readMissRatio }));
    process.stdout.write(`${JSON.stringify(rows)}\n`);
  } else {
    process.stdout.write(formatCurveTable(points, footprint));
  }
  return 0;
}

function parseBlockBytes(text: string | undefined): number {
  if (text === undefined) return BLOCK_BYTES_DEFAULT;
  const bytes = parseSize(text, '--block-size');
  if (!isPowerOfTwo(bytes) || bytes < BLOCK_BYTES_MIN || bytes > BLOCK_BYTES_MAX) {
    throw new UsageError(`--block-size: ${text} must be a power of two from 4K to 1M`);
  }
  return bytes;
}

function parsePolicy(name: string): string {
  if (name === OPT_POLICY || POLICY_NAMES.includes(name)) return name;
  throw new UsageError(`--policy: unknown policy '${name}' (valid: ${[...POLICY_NAMES, OPT_POLICY].join(', ')})`);
}

function parseAssocNumber(text: string): number {
  const assoc = parseCount(text, '--assoc', 1, CACHE_BLOCKS_MAX);
  if (!isPowerOfTwo(assoc)) throw new UsageError(`--assoc: ${assoc} is not a power of two (or 'full')`);
  return assoc;
}

/** Explicit assoc must divide the size; the default is the engine's when it divides, else full. */
function parseAssoc(text: string | undefined, cacheBlocks: number): number | 'full' {
  if (text === 'full') return 'full';
  if (text === undefined) return cacheBlocks % ASSOC_DEFAULT === 0 && cacheBlocks > ASSOC_DEFAULT ? ASSOC_DEFAULT : 'full';
  const assoc = parseAssocNumber(text);
  if (cacheBlocks % assoc !== 0) throw new UsageError(`--assoc: ${assoc} does not divide --cache-blocks ${cacheBlocks}`);
  return assoc === cacheBlocks ? 'full' : assoc;
}

function parseCurveSizes(text: string): CurveSize[] {
  const sizes = text.split(',').map((item) => {
    const trimmed = item.trim();
    const percent = trimmed.endsWith('%');
    const number = percent ? trimmed.slice(0, -1) : trimmed;
    if (!/^\d+(\.\d+)?$/.test(number) || Number(number) <= 0 || (!percent && !Number.isInteger(Number(number)))) {
      throw new UsageError(`--curve: '${item}' is not a block count or a percentage (examples: 1%,5%,734)`);
    }
    if (percent && Number(number) > 100) throw new UsageError(`--curve: ${item} is over 100% of the footprint`);
    return { value: Number(number), percent };
  });
  if (sizes.length === 0) throw new UsageError('--curve needs at least one size');
  return sizes;
}
