// `blockcache sim` as users run it: the command module, and the real CLI
// through bin/blockcache (skipped until the lead's dist/src/cli/main.js exists).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { simCommand } from '../../src/cli/commands/sim.js';
import { UsageError } from '../../src/cli/command.js';
import { haveTrace, REPOSITORY_ROOT, tracePath } from './traces.js';

const TRACE = 'hplajw_1week.csv';
const FIELDS = ['accesses', 'misses', 'missRatio', 'readAccesses', 'readMisses', 'readMissRatio'];
const run = promisify(execFile);

/** Runs simCommand in a child process (stdout belongs to the test reporter here). */
async function capture(argv: string[]): Promise<string> {
  const module = join(REPOSITORY_ROOT, 'dist', 'src', 'cli', 'commands', 'sim.js');
  const script = `const { simCommand } = await import(${JSON.stringify(module)}); process.exitCode = await simCommand.run(${JSON.stringify(argv)});`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
  return stdout;
}

test('test-sim-cli-json: --json prints exactly the contract fields', { skip: !haveTrace(TRACE) && 'shared traces not found' }, async () => {
  const output = await capture(['--trace', tracePath(TRACE), '--cache-blocks', '734', '--policy', 'arc', '--assoc', 'full', '--json']);
  const result = JSON.parse(output);
  assert.deepEqual(Object.keys(result), FIELDS);
  assert.equal(result.missRatio.toFixed(4), '0.2483');
});

test('test-sim-cli-json: curve mode prints a table and writes an SVG', { skip: !haveTrace(TRACE) && 'shared traces not found' }, async () => {
  const directory = mkdtempSync(join(tmpdir(), 'blockcache-sim-'));
  try {
    const svg = join(directory, 'curve.svg');
    const output = await capture(['--trace', tracePath(TRACE), '--curve', '1%,5%,1836', '--policy', 'lru,opt', '--svg', svg]);
    assert.match(output, /footprint: 7344 blocks/);
    assert.match(output, /1836\s+25\.0\s+0\.1750 \(0\.4792\)\s+0\.1186 \(0\.3129\)/);
    const text = readFileSync(svg, 'utf8');
    assert.match(text, /^<svg /);
    assert.equal((text.match(/<polyline/g) ?? []).length, 2);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('test-sim-cli-json: bad arguments are usage errors', async () => {
  await assert.rejects(simCommand.run(['--trace', 'x.csv']), UsageError);
  await assert.rejects(simCommand.run(['--trace', 'x.csv', '--cache-blocks', '100', '--policy', 'nope']), /unknown policy 'nope'/);
  await assert.rejects(simCommand.run(['--trace', 'x.csv', '--cache-blocks', '100', '--assoc', '64']), /does not divide/);
  await assert.rejects(simCommand.run(['--trace', 'x.csv', '--cache-blocks', '100', '--block-size', '3K']), UsageError);
});

// The real CLI: needs the lead's dist/src/cli/main.js with simCommand wired in.
const MAIN_BUILT = existsSync(join(REPOSITORY_ROOT, 'dist', 'src', 'cli', 'main.js'));
test('test-sim-cli-json: node bin/blockcache sim --json (real CLI)', { skip: (!MAIN_BUILT && 'dist/src/cli/main.js not built yet (lead)') || (!haveTrace(TRACE) && 'shared traces not found') }, async () => {
  const { stdout } = await run(process.execPath, [join(REPOSITORY_ROOT, 'bin', 'blockcache'), 'sim', '--trace', tracePath(TRACE), '--cache-blocks', '73', '--policy', 'lru', '--assoc', 'full', '--json']);
  const result = JSON.parse(stdout);
  assert.deepEqual(Object.keys(result), FIELDS);
  assert.equal(result.missRatio.toFixed(4), '0.5631');
  assert.equal(result.readMissRatio.toFixed(4), '0.8018');
});
