// Crash testing of the real server: a writer (python3-libnbd) writes
// self-describing 512-byte units through `blockcache serve` while the test
// kills the server with SIGKILL — and, for power loss, also kills the nbdkit
// "disks with a volatile write cache" under it — then restarts everything and
// verifies every unit (scripts/nbd-verify.py). A final churn, flush, detach and
// re-read checks that no content changed without a write and that the origin
// alone is complete.
import * as fs from 'node:fs';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { blockcacheChecked, serveCache, ServedCache } from '../support/blockcache.js';
import { BackgroundProcess, describeResult, runCommand, spawnBackground, requireTools } from '../support/process.js';
import { makeTempDir, TempDir } from '../support/temp-dir.js';
import { sleep, waitForSocket } from '../support/wait.js';

const SCRIPTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/durability/scripts');
const PYTHON = '/usr/bin/python3';
const MiB = 1024 * 1024;
const UNIT_BYTES = 512;

export interface CrashScenario {
  readonly mode: 'writeback' | 'writethrough' | 'writearound';
  readonly blockSize: string;
  readonly powerLoss: boolean;
  readonly cycles: number;
  readonly seed: number;
  /** serve --ram-cache SIZE (default: serve's own default, 64M). */
  readonly ramCache?: string;
}

const ORIGIN_BYTES = 32 * MiB;
const CACHE_BYTES = 3 * MiB;
/** Units written: 8 MiB, more than twice the cache, so writes evict and write back. */
const UNITS = (8 * MiB) / UNIT_BYTES;

interface Disk { readonly uri: string; process: BackgroundProcess; readonly file: string; readonly socket: string }

async function startDisk(directory: TempDir, name: string, seed: number): Promise<Disk> {
  const file = directory.file(`${name}.img`);
  const socket = directory.file(`${name}-${seed}.sock`);
  const process = spawnBackground('nbdkit', ['-f', '-U', socket, 'python', path.join(SCRIPTS, 'volatile-disk.py'), `file=${file}`, `seed=${seed}`]);
  await waitForSocket(socket, 20_000);
  return { uri: `nbd+unix:///?socket=${socket}`, process, file, socket };
}

async function python(script: string, args: readonly string[], timeoutMs = 120_000) {
  return runCommand(PYTHON, [path.join(SCRIPTS, script), ...args], { timeoutMs });
}

async function verify(uri: string, state: string, observed: string, expect?: string): Promise<void> {
  const result = await python('nbd-verify.py', [uri, state, String(UNITS), observed, ...(expect ? [expect] : [])]);
  assert.equal(result.code, 0, describeResult('verify after crash', result));
}

export async function runCrashScenario(scenario: CrashScenario): Promise<{ writes: number; cycles: number }> {
  await requireTools(['nbdkit', 'nbdsh']);
  const directory = await makeTempDir('blockcache-crash-');
  const origin = directory.file('origin.img');
  const cache = directory.file('cache.img');
  fs.closeSync(fs.openSync(origin, 'w'));
  fs.truncateSync(origin, ORIGIN_BYTES);
  fs.closeSync(fs.openSync(cache, 'w'));
  fs.truncateSync(cache, CACHE_BYTES);
  const disks: Disk[] = [];
  let served: ServedCache | undefined;
  let writes = 0;
  const state = directory.file('writer-state.json');
  const observed = directory.file('observed.json');
  try {
    let cacheSpec = cache;
    let originSpec = origin;
    if (scenario.powerLoss) {
      disks.push(await startDisk(directory, 'origin', scenario.seed), await startDisk(directory, 'cache', scenario.seed + 1));
      originSpec = disks[0]!.uri;
      cacheSpec = disks[1]!.uri;
    }
    await blockcacheChecked(['create', '--cache', cacheSpec, '--origin', originSpec, '--mode', scenario.mode, '--block-size', scenario.blockSize, '--assoc', '64']);
    const originArgs = () => (scenario.powerLoss ? ['--origin', disks[0]!.uri] : []);
    const serveArgs = () => [...originArgs(), ...(scenario.ramCache !== undefined ? ['--ram-cache', scenario.ramCache] : [])];
    for (let cycle = 0; cycle < scenario.cycles; cycle++) {
      served = await serveCache(cacheSpec, directory.path, serveArgs());
      const writer = spawnBackground(PYTHON, [path.join(SCRIPTS, 'nbd-writer.py'), served.uri, state, String(UNITS), String(scenario.seed * 100 + cycle), '1000000']);
      await sleep(600 + ((scenario.seed * 7919 + cycle * 104729) % 1500));
      await served.process.kill('SIGKILL');
      served = undefined;
      if (scenario.powerLoss) {
        // Power loss: the disks lose what they had not written back, all at once.
        for (const disk of disks) await disk.process.kill('SIGKILL');
        for (let i = 0; i < disks.length; i++) {
          const restarted = await startDisk(directory, i === 0 ? 'origin' : 'cache', scenario.seed + 10 * (cycle + 1) + i);
          disks[i]!.process = restarted.process;
          Object.assign(disks[i]!, { uri: restarted.uri, socket: restarted.socket });
        }
        cacheSpec = disks[1]!.uri;
      }
      await writer.exited;
      const written = /"writes": (\d+)/.exec(writer.output());
      writes += written ? Number(written[1]) : 0;
      served = await serveCache(cacheSpec, directory.path, serveArgs());
      await verify(served.uri, state, observed);
      await served.stop();
      served = undefined;
    }
    // Churn the cache with other data, write everything back, restart: nothing may change.
    served = await serveCache(cacheSpec, directory.path, serveArgs());
    const churn = await runCommand('nbdsh', ['-u', served.uri, '-c',
      `import os\nfor i in range(64):\n    h.pwrite(os.urandom(65536), ${16 * MiB} + (i * 7919 % 256) * 65536)\nh.flush()\n` +
      `for i in range(0, ${8 * MiB}, 65536):\n    h.pread(65536, ${16 * MiB} + i)\n`], { timeoutMs: 120_000 });
    assert.equal(churn.code, 0, describeResult('churn', churn));
    await blockcacheChecked(['flush', '--control', served.control]);
    const expect = directory.file('expect.json');
    fs.copyFileSync(observed, expect);
    await verify(served.uri, state, observed, expect);
    await served.stop();
    served = undefined;
    await blockcacheChecked(['detach', '--cache', cacheSpec, ...(originArgs())]);
    // The origin alone now holds exactly what was observed.
    const originUri = `nbd+unix:///?socket=${directory.file('plain-origin.sock')}`;
    for (const disk of disks) await disk.process.kill('SIGKILL'); // detach flushed them
    const plain = spawnBackground('nbdkit', ['-f', '-r', '-U', directory.file('plain-origin.sock'), 'file', scenario.powerLoss ? disks[0]!.file : origin]);
    try {
      await waitForSocket(directory.file('plain-origin.sock'), 20_000);
      await verify(originUri, state, directory.file('origin-observed.json'), expect);
    } finally {
      await plain.stop();
    }
    return { writes, cycles: scenario.cycles };
  } finally {
    if (served) await served.process.kill('SIGKILL');
    for (const disk of disks) await disk.process.stop().catch(() => {});
    await directory.remove();
  }
}


/** Negative control: the verifier must reject misplaced, stale and never-written data. */
export async function verifierCatchesCorruption(): Promise<void> {
  await requireTools(['nbdkit', 'nbdsh']);
  const directory = await makeTempDir('blockcache-verify-');
  const socket = directory.file('memory.sock');
  const server = spawnBackground('nbdkit', ['-f', '-U', socket, 'memory', `${ORIGIN_BYTES}`]);
  try {
    await waitForSocket(socket, 20_000);
    const uri = `nbd+unix:///?socket=${socket}`;
    const state = directory.file('state.json');
    const written = await python('nbd-writer.py', [uri, state, String(UNITS), '7', '400']);
    assert.equal(written.code, 0, describeResult('writer', written));
    await verify(uri, state, directory.file('observed.json'));
    const writerState = JSON.parse(fs.readFileSync(state, 'utf8')) as { issued: Record<string, number>; durable: Record<string, number> };
    const [unit] = Object.keys(writerState.durable).map(Number).filter((u) => writerState.durable[u]! > 0);
    assert.ok(unit !== undefined);
    const corruptions = [
      `h.pwrite(h.pread(512, ${(unit + 1) * UNIT_BYTES}) if h.pread(512, ${(unit + 1) * UNIT_BYTES}) != bytes(512) else b"\\x01" * 512, ${unit * UNIT_BYTES})`,
      `h.pwrite(bytes(512), ${unit * UNIT_BYTES})`,
    ];
    for (const corruption of corruptions) {
      const before = await runCommand('nbdsh', ['-u', uri, '-c', `saved = h.pread(512, ${unit * UNIT_BYTES})\n${corruption}\nopen(${JSON.stringify(directory.file('saved.bin'))}, 'wb').write(saved)`]);
      assert.equal(before.code, 0, describeResult('corrupt', before));
      const result = await python('nbd-verify.py', [uri, state, String(UNITS), directory.file('observed2.json')]);
      assert.equal(result.code, 1, `the verifier must catch: ${corruption}\n${result.stdout}`);
      await runCommand('nbdsh', ['-u', uri, '-c', `h.pwrite(open(${JSON.stringify(directory.file('saved.bin'))}, 'rb').read(), ${unit * UNIT_BYTES})`]);
    }
  } finally {
    await server.stop();
    await directory.remove();
  }
}
