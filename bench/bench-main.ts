// npm run bench: blockcache against its peers, in one run, on this machine.
//
//   bash bench/run.sh [--only hot,ram,cold,slow,open] [--runtime S] [--ramp S] [--warmup S]
//                     [--no-record] [--keep] [--cpu-prof DIR] [--pattern TEXT]
//
// Scenarios (see bench/scenarios/*): hot (everything cached on the SSD tier,
// peer nbdkit file), ram (the working set in the RAM tier, same peer), cold
// (1 MiB sequential reads and writes through an empty cache, same peer), slow (a 2 ms, one-at-a-time origin, peer nbdkit's cache filter), open (a
// one-million-block cache: time to ready, memory per block). Prints a table per
// scenario and rewrites that scenario's section of bench/RESULTS.md.
// Benchmarks are never timed tests: nothing here fails when a target is missed.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { BenchContext, ScenarioResult } from './scenarios/context.js';
import { hotPath, ramPath } from './scenarios/hot-path.js';
import { coldPath } from './scenarios/cold-path.js';
import { openCache } from './scenarios/open-cache.js';
import { slowOrigin } from './scenarios/slow-origin.js';
import { machineHeader, writeResults } from './support/report.js';
import { REPO_ROOT } from './support/servers.js';
import { createWorkspace } from './support/workspace.js';

const SCENARIOS: Record<string, (context: BenchContext) => Promise<ScenarioResult>> = {
  hot: hotPath,
  ram: ramPath,
  cold: coldPath,
  slow: slowOrigin,
  open: openCache,
};

const RESULTS_FILE = path.join(REPO_ROOT, 'bench', 'RESULTS.md');

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' }, runtime: { type: 'string' }, ramp: { type: 'string' }, warmup: { type: 'string' },
      'no-record': { type: 'boolean' }, keep: { type: 'boolean' }, 'cpu-prof': { type: 'string' }, pattern: { type: 'string' }, repeat: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npm run bench -- [--only hot,ram,cold,slow,open] [--runtime S (10)] [--ramp S (2)] [--warmup S (20)] [--no-record] [--keep] [--cpu-prof DIR] [--pattern LABEL-SUBSTRING] [--repeat N (1): hot-path rounds per pattern, medians reported]\n');
    return 0;
  }
  const names = values.only !== undefined ? values.only.split(',').map((name) => name.trim()) : Object.keys(SCENARIOS);
  const unknown = names.filter((name) => !(name in SCENARIOS));
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}; choose from ${Object.keys(SCENARIOS).join(', ')}`);
  const repeat = Number(values.repeat ?? 1);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20) throw new Error(`--repeat must be an integer from 1 to 20, not ${values.repeat}`);
  const workspace = createWorkspace(values.keep ?? false);
  const context: BenchContext = {
    workspace,
    runtimeSeconds: Number(values.runtime ?? 10),
    rampSeconds: Number(values.ramp ?? 2),
    warmupSeconds: Number(values.warmup ?? 20),
    repeat,
    patternFilter: values.pattern,
    nodeFlags: values['cpu-prof'] !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(values['cpu-prof'])}`] : [],
    log: (line) => process.stderr.write(`bench: ${line}\n`),
  };
  const started = performance.now();
  try {
    const header = machineHeader();
    process.stdout.write(`${header.join('\n')}\n\n`);
    if (!values['no-record']) {
      writeResults(RESULTS_FILE, 'blockcache benchmarks', 'machine',
        `Produced by \`npm run bench\` (bench/run.sh). Last run (${names.join(', ')}) on:\n\n${header.join('\n')}`);
    }
    for (const name of names) {
      const result = await SCENARIOS[name]!(context);
      process.stdout.write(`${result.text}\n`);
      if (!values['no-record']) {
        writeResults(RESULTS_FILE, 'blockcache benchmarks', name, `${result.markdown}\n_Measured ${new Date().toISOString()}._`);
      }
    }
  } finally {
    workspace.remove();
  }
  process.stderr.write(`bench: done in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
  return 0;
}

main().then((code) => process.exit(code), (error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
