// Policy benchmark: miss ratios of every policy (and OPT) at 1%, 5%, 10% and
// 25% of each shared trace's footprint (fully associative and assoc 512 where
// it divides), the share of the LRU-to-OPT gap each closes, and the bytes per
// cache block of mapping + policy state for a ~1,000,000-block cache at the
// default associativity.
// Run: npx tsc -p . && node dist/bench/policies.js [TRACES_DIRECTORY]
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlockIndex } from '../src/cache/block-index.js';
import { SetMapping } from '../src/cache/set-mapping.js';
import { OptPolicy } from '../src/policies/opt.js';
import { createPolicy, DEFAULT_POLICY, POLICY_NAMES } from '../src/policies/registry.js';
import { formatTable, missRatioCurve } from '../src/sim/curve.js';

const TRACES = ['hplajw_1week.csv', 'mqsim_websearch_small.csv', 'mqsim_tpcc_small.csv'];
const PERCENTS = [1, 5, 10, 25];
const MEMORY_BLOCKS = 1_000_448; // 1954 sets of 512: the engine's mapping needs a power-of-two assoc
const MEMORY_ASSOC = 512; // the default (ASSOC_DEFAULT)

const here = dirname(fileURLToPath(import.meta.url));
const directory = process.argv[2] ?? resolve(here, '..', '..', '..', 'shared', 'traces');

async function traceTable(name: string): Promise<string> {
  const policies = [...POLICY_NAMES, 'opt'];
  const started = performance.now();
  const { footprint, points } = await missRatioCurve(join(directory, name), {
    sizes: PERCENTS.map((value) => ({ value, percent: true })),
    policies,
    blockBytes: 4096,
    assoc: 'full',
  });
  const seconds = (performance.now() - started) / 1000;
  const sizes = [...new Set(points.map((point) => point.cacheBlocks))];
  const at = (policy: string, size: number) => points.find((point) => point.policy === policy && point.cacheBlocks === size)!;
  const header = ['policy', ...sizes.map((size, index) => `${PERCENTS[index]}% = ${size}`), 'gap closed (avg)'];
  const rows = policies.map((policy) => {
    const gaps = sizes.map((size) => {
      const lru = at('lru', size).missRatio;
      const opt = at('opt', size).missRatio;
      return lru - opt > 0 ? (lru - at(policy, size).missRatio) / (lru - opt) : 0;
    });
    const average = gaps.reduce((sum, gap) => sum + gap, 0) / gaps.length;
    return [policy, ...sizes.map((size) => `${at(policy, size).missRatio.toFixed(4)} (${at(policy, size).readMissRatio.toFixed(4)})`), `${(average * 100).toFixed(1)}%`];
  });
  return `### ${name} (footprint ${footprint} blocks; miss ratio (read miss ratio), fully associative; ${seconds.toFixed(1)} s for all runs)\n\n${markdown([header, ...rows])}`;
}

function markdown(rows: string[][]): string {
  const lines = rows.map((row) => `| ${row.join(' | ')} |`);
  lines.splice(1, 0, `|${rows[0]!.map((_, index) => (index === 0 ? '---' : '---:')).join('|')}|`);
  return `${lines.join('\n')}\n`;
}

function memoryTable(): string {
  const arrayBuffersBefore = process.memoryUsage().arrayBuffers;
  const originsFloat = new Float64Array(MEMORY_BLOCKS);
  const originsUint32 = new Uint32Array(MEMORY_BLOCKS);
  // The SSD tier's index: one small table per set (SetMapping), as the engine builds it.
  const index = new BlockIndex(MEMORY_BLOCKS, (cacheBlock) => originsFloat[cacheBlock]!, new SetMapping(MEMORY_BLOCKS, MEMORY_ASSOC));
  const geometry = { cacheBlocks: MEMORY_BLOCKS, assoc: MEMORY_ASSOC };
  const chosen = createPolicy(DEFAULT_POLICY, { ...geometry, originOf: (cacheBlock) => originsUint32[cacheBlock]! });
  const measuredDefault = process.memoryUsage().arrayBuffers - arrayBuffersBefore - index.memoryBytes - originsFloat.byteLength - originsUint32.byteLength;
  const perBlock = (bytes: number): string => (bytes / MEMORY_BLOCKS).toFixed(2);
  const rows: string[][] = [['policy', 'policy B/block', 'total with u32 origins', 'total with f64 origins']];
  const mappingUint32 = index.memoryBytes + originsUint32.byteLength;
  const mappingFloat = index.memoryBytes + originsFloat.byteLength;
  const policies = POLICY_NAMES.map((name) => (name === DEFAULT_POLICY ? chosen : createPolicy(name, geometry)));
  policies.push(new OptPolicy(geometry));
  for (const policy of policies) {
    rows.push([policy.name + (policy === chosen ? ' (default)' : ''), perBlock(policy.memoryBytes), perBlock(mappingUint32 + policy.memoryBytes), perBlock(mappingFloat + policy.memoryBytes)]);
  }
  return (
    `### Bytes per cache block, ${MEMORY_BLOCKS.toLocaleString('en')} blocks (assoc ${MEMORY_ASSOC})\n\n` +
    `Mapping: BlockIndex ${perBlock(index.memoryBytes)} B/block (a table of 2-byte positions per set, load 0.8 when full) + origin block per cache block ` +
    `(4 B as Uint32Array when the origin has < 2^32 blocks, i.e. < 16 TiB at 4 KiB; 8 B as Float64Array otherwise).\n` +
    `Cross-check: process.memoryUsage().arrayBuffers grew by ${perBlock(measuredDefault)} B/block for the ${DEFAULT_POLICY} (default) state ` +
    `(summed typedarray byteLengths: ${perBlock(chosen.memoryBytes)}).\n\n${markdown(rows)}`
  );
}

async function main(): Promise<void> {
  const sections = [memoryTable()];
  for (const name of TRACES) {
    if (!existsSync(join(directory, name))) {
      sections.push(`### ${name}: not found in ${directory}\n`);
      continue;
    }
    sections.push(await traceTable(name));
  }
  process.stdout.write(`${sections.join('\n')}\n${formatTable([['done'], ['']]).trim()}\n`);
}

await main();
