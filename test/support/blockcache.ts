// Running the real blockcache CLI from tests: create a cache over files (or
// any device spec), serve it as a child process, wait for its 'ready URI' line.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackgroundProcess, CommandResult, runCommand, spawnBackground } from './process.js';
import { makeTempDir, TempDir } from './temp-dir.js';
import { waitFor } from './wait.js';

/** bin/blockcache at the repository root (tests run from dist/test/support). */
export const BLOCKCACHE_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/blockcache');

export function blockcache(args: readonly string[], timeoutMs = 120_000): Promise<CommandResult> {
  return runCommand(process.execPath, [BLOCKCACHE_BIN, ...args], { timeoutMs });
}

export async function blockcacheChecked(args: readonly string[], timeoutMs = 120_000): Promise<CommandResult> {
  const result = await blockcache(args, timeoutMs);
  if (result.code !== 0) throw new Error(`blockcache ${args.join(' ')}: exit ${result.code}\n${result.stderr}${result.stdout}`);
  return result;
}

export interface ServedCache {
  readonly uri: string;
  readonly socket: string;
  readonly control: string;
  readonly process: BackgroundProcess;
  /** SIGTERM and wait: a clean shutdown. */
  stop(): Promise<void>;
}

/** Starts `blockcache serve` and resolves once it printed its ready line. */
export async function serveCache(cachePath: string, directory: string, extra: readonly string[] = []): Promise<ServedCache> {
  const socket = path.join(directory, `nbd-${process.pid}-${Math.random().toString(36).slice(2, 8)}.sock`);
  const control = `${socket}.control`;
  const child = spawnBackground(process.execPath, [BLOCKCACHE_BIN, 'serve', '--cache', cachePath, '--socket', socket, '--control', control, ...extra]);
  let exited = false;
  void child.exited.then(() => (exited = true));
  await waitFor('blockcache serve to print ready', () => {
    if (exited) throw new Error(`blockcache serve exited early:\n${child.output()}`);
    return /^ready /m.test(child.output());
  }, 60_000);
  const uri = /^ready (\S+)/m.exec(child.output())![1]!;
  return {
    uri, socket, control, process: child,
    async stop() {
      await child.kill('SIGTERM');
      const code = await child.exited;
      if (code !== 0) throw new Error(`blockcache serve exited with ${code}:\n${child.output()}`);
    },
  };
}

/** What withServeScope gives a test: a temporary directory, and serveCache in it. */
export interface ServeScope {
  readonly directory: TempDir;
  /** serveCache in the scope's directory; the scope kills the server at its end unless it has exited. */
  serve(cachePath: string, extra?: readonly string[]): Promise<ServedCache>;
}

/**
 * Runs `body` with a fresh temporary directory. However it ends, every server it
 * started that still runs is killed (SIGKILL: a test that wants a clean stop
 * calls `stop()` itself) and the directory is removed.
 */
export async function withServeScope(body: (scope: ServeScope) => Promise<void>): Promise<void> {
  const directory = await makeTempDir();
  const started: ServedCache[] = [];
  try {
    await body({
      directory,
      async serve(cachePath, extra = []) {
        const served = await serveCache(cachePath, directory.path, extra);
        started.push(served);
        return served;
      },
    });
  } finally {
    for (const served of started) await served.process.kill('SIGKILL');
    await directory.remove();
  }
}

/**
 * A sparse cache file and a formatted cache, over a sparse origin file of
 * `originBytes` — or over `originSpec` (an NBD URI) when given.
 */
export async function createFileCache(directory: TempDir, options: {
  originBytes?: number; originSpec?: string; cacheBytes: number; mode: string; blockSize?: string; assoc?: string; policy?: string;
  originContent?: (fd: number) => void;
}): Promise<{ origin: string; cache: string }> {
  const origin = options.originSpec ?? directory.file('origin.img');
  const cache = directory.file('cache.img');
  if (options.originSpec === undefined) {
    fs.closeSync(fs.openSync(origin, 'w'));
    fs.truncateSync(origin, options.originBytes ?? 0);
  }
  if (options.originContent) {
    const fd = fs.openSync(origin, 'r+');
    try { options.originContent(fd); } finally { fs.closeSync(fd); }
  }
  fs.closeSync(fs.openSync(cache, 'w'));
  fs.truncateSync(cache, options.cacheBytes);
  await blockcacheChecked(['create', '--cache', cache, '--origin', origin, '--mode', options.mode,
    ...(options.blockSize ? ['--block-size', options.blockSize] : []), ...(options.assoc ? ['--assoc', options.assoc] : []),
    ...(options.policy ? ['--policy', options.policy] : [])]);
  return { origin, cache };
}

/**
 * Registers the NBD conformance suite (nbd-conformance.md A–G) against the real
 * `blockcache serve` in `mode` with `blockSize` cache blocks, over file devices,
 * with a cache much smaller than the data written so eviction happens.
 */
export async function defineBlockcacheConformance(mode: string, blockSize: string, options: { skipFuse?: boolean } = {}): Promise<void> {
  const { after, before } = await import('node:test');
  const { defineConformanceSuite } = await import('./conformance.js');
  const { makeTempDir } = await import('./temp-dir.js');
  const MiB = 1024 * 1024;
  let directory: TempDir;
  before(async () => {
    directory = await makeTempDir('blockcache-conformance-');
  });
  after(async () => {
    await directory.remove();
  });
  defineConformanceSuite(`blockcache ${mode} ${blockSize}`, async () => {
    const { cache } = await createFileCache(directory, { originBytes: 256 * MiB, cacheBytes: 48 * MiB, mode, blockSize });
    const served = await serveCache(cache, directory.path);
    return { uri: served.uri, stop: () => served.stop() };
  }, options);
}
