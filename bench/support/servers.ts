// Starting and stopping the servers a benchmark compares: `blockcache serve`
// (through the built CLI, so the figures are what a user gets) and nbdkit.
//
// Every server is a child process listening on a Unix socket in the run's work
// directory; it is stopped by its own pid (SIGTERM, then SIGKILL after a grace
// period), never by name. Readiness: blockcache prints 'ready URI' on stdout;
// nbdkit writes its pid file once it accepts connections.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/bench/support → the repository root. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI_MAIN = path.join(REPO_ROOT, 'dist/src/cli/main.js');

/** Servers get this long to print their ready line (opening a large cache included). */
const READY_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 10_000;

export const TOOL_ENV: NodeJS.ProcessEnv = { ...process.env, PATH: `/usr/bin:/usr/sbin:/bin:/sbin:${process.env.PATH ?? ''}` };

export interface Server {
  readonly name: string;
  readonly uri: string;
  readonly pid: number;
  /** Milliseconds from spawn to ready. */
  readonly readyMs: number;
  /** blockcache only: the control socket. */
  readonly control?: string;
  output(): string;
  /** SIGTERM (a clean shutdown), SIGKILL after a grace period; resolves with the exit code. */
  stop(): Promise<number | null>;
}

interface Child {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  output(): string;
}

function start(command: string, args: readonly string[], env: NodeJS.ProcessEnv = TOOL_ENV): Child {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  child.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => chunks.push(chunk));
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (error) => { chunks.push(Buffer.from(`spawn error: ${error.message}\n`)); resolve(null); });
    child.on('exit', (code) => resolve(code));
  });
  return { child, exited, output: () => Buffer.concat(chunks).toString('utf8') };
}

async function waitUntil(what: string, child: Child, ready: () => boolean): Promise<void> {
  let exited = false;
  void child.exited.then(() => (exited = true));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!ready()) {
    if (exited) throw new Error(`${what} exited before it was ready:\n${child.output()}`);
    if (Date.now() > deadline) {
      child.child.kill('SIGKILL');
      throw new Error(`${what} not ready after ${READY_TIMEOUT_MS} ms:\n${child.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function stopper(child: Child): () => Promise<number | null> {
  return async () => {
    if (child.child.exitCode !== null || child.child.signalCode !== null) return child.child.exitCode;
    child.child.kill('SIGTERM');
    const timer = setTimeout(() => child.child.kill('SIGKILL'), STOP_GRACE_MS);
    const code = await child.exited;
    clearTimeout(timer);
    return code;
  };
}

export interface BlockcacheServeOptions {
  readonly cache: string;
  readonly socket: string;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=DIR']. */
  readonly nodeFlags?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Extra `serve` arguments, e.g. ['--ram-cache', '0']. */
  readonly serveArgs?: readonly string[];
}

export async function serveBlockcache(options: BlockcacheServeOptions): Promise<Server> {
  const control = `${options.socket}.control`;
  const started = performance.now();
  const child = start(process.execPath, [...(options.nodeFlags ?? []), CLI_MAIN, 'serve',
    '--cache', options.cache, '--socket', options.socket, '--control', control, ...(options.serveArgs ?? [])], options.env ?? TOOL_ENV);
  await waitUntil('blockcache serve', child, () => /^ready /m.test(child.output()));
  const readyMs = performance.now() - started;
  const uri = /^ready (\S+)/m.exec(child.output())![1]!;
  return { name: 'blockcache', uri, pid: child.child.pid!, readyMs, control, output: child.output, stop: stopper(child) };
}

/** `nbdkit [filters] PLUGIN [params]` on a Unix socket, in the foreground. */
export async function serveNbdkit(name: string, socket: string, pluginArgs: readonly string[], filters: readonly string[] = []): Promise<Server> {
  const pidFile = `${socket}.pid`;
  fs.rmSync(pidFile, { force: true });
  const started = performance.now();
  const child = start('nbdkit', ['--foreground', '--exit-with-parent', '--unix', socket, '--pidfile', pidFile,
    ...filters.map((filter) => `--filter=${filter}`), ...pluginArgs]);
  await waitUntil(`nbdkit (${name})`, child, () => fs.existsSync(pidFile) && fs.statSync(pidFile).size > 0);
  const readyMs = performance.now() - started;
  return { name, uri: `nbd+unix:///?socket=${socket}`, pid: child.child.pid!, readyMs, output: child.output, stop: stopper(child) };
}

/** Runs the blockcache CLI to completion (create, status); throws on a non-zero exit. */
export function blockcacheCli(args: readonly string[]): string {
  const result = spawnSync(process.execPath, [CLI_MAIN, ...args], { env: TOOL_ENV, encoding: 'utf8', timeout: 300_000 });
  if (result.status !== 0) throw new Error(`blockcache ${args.join(' ')}: exit ${result.status}\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** The counters `blockcache status --json` reports (the fields the bench uses). */
export interface CacheCounters {
  readonly cacheBlocks: number;
  readonly validBlocks: number;
  readonly dirtyBlocks: number;
  readonly readHits: number;
  readonly readMisses: number;
  readonly writeHits: number;
  readonly writeMisses: number;
  readonly evictions: number;
  /** RAM tier: resident blocks and block reads it answered. */
  readonly ramBlocks: number;
  readonly ramReadHits: number;
  /** What the SSD tier keeps for its cache blocks (slot table, index, policy, cleaner). */
  readonly metadataMemoryBytes: number;
}

export function cacheStatus(control: string): CacheCounters {
  return JSON.parse(blockcacheCli(['status', '--control', control, '--json'])) as CacheCounters;
}

/** Block hit ratio (reads and writes together) between two status snapshots. */
export function hitRatio(before: CacheCounters, after: CacheCounters): { read: number; write: number } {
  const ratio = (hits: number, misses: number) => (hits + misses > 0 ? hits / (hits + misses) : Number.NaN);
  return {
    read: ratio(after.readHits - before.readHits, after.readMisses - before.readMisses),
    write: ratio(after.writeHits - before.writeHits, after.writeMisses - before.writeMisses),
  };
}

/** Resident set size of a process, from /proc (Linux). */
export function residentBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}
