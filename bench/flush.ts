// Flush benchmark: how fast `flush` (engine.writebackAll) empties a cache full
// of dirty data written in random order, against the origin's own sequential
// write speed (4 MiB writes + fdatasync through the same FileDevice). Goal:
// flush >= 80% of the origin's sequential speed.
//
// The dirty data covers a contiguous origin region in random block order (the
// case sorted, coalesced writeback is for), plus a sparse variant where only
// every other block is dirty (runs cannot coalesce beyond one block).
//
// Two origins: a local file (page cache warm: faster than any disk, so the
// flush's own CPU cost shows), and a disk-like NBD origin, the kind blockcache
// is meant to sit in front of: nbdkit serving a file one request at a time
// (noparallel) with a fixed cost per write (delay) and a bandwidth cap (rate),
// a model of a hard disk. The model is only its filters: its backing file
// lives in memory (/dev/shm when there is one), so the VM's own disk and page
// cache writeback (which made single writes vary 9-22 ms from run to run) do
// not enter it, and the rate filter's bucket holds 0.1 s (its default, 2 s,
// let a whole 203 MiB flush burst through uncapped: the "disk" measured 300-400
// MiB/s instead of its 150). The sparse case is not run on the disk model: one
// 4 KiB write per block at its per-request cost takes minutes and measures only
// the model.
// Run: npx tsc -p . && node dist/bench/flush.js [DIRECTORY] [CACHE_MIB] [CASES] [REPEATS]
// CASES: comma-separated subset of file-dense,file-sparse,disk-dense (default: all).
// Each sequential and flush measurement is repeated REPEATS times (default 3)
// and the median reported, with the range: single runs on a small shared VM
// swing by ±30%.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { openDevice } from '../src/devices/open-device.js';
import { createCache, openCache } from '../src/cache/open-cache.js';
import { Server, serveNbdkit } from './support/servers.js';

const MiB = 1024 * 1024;
const BLOCK_BYTES = 4096;
const ownDirectory = process.argv[2] === undefined;
const directory = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'blockcache-flush-bench-'));
const cacheMiB = Number(process.argv[3] ?? 256);
const CASES = ['file-dense', 'file-sparse', 'disk-dense'];
const cases = new Set((process.argv[4] ?? CASES.join(',')).split(','));
for (const name of cases) if (!CASES.includes(name)) throw new Error(`unknown case ${name}: expected ${CASES.join(', ')}`);
const repeats = Number(process.argv[5] ?? 3);
if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`REPEATS must be a positive integer, not ${process.argv[5]}`);

/** Runs `measure` `repeats` times; the run with the median of `value`, and the range. */
async function median<T>(measure: () => Promise<T>, value: (result: T) => number): Promise<{ result: T; low: number; high: number }> {
  const results: T[] = [];
  for (let i = 0; i < repeats; i++) results.push(await measure());
  results.sort((a, b) => value(a) - value(b));
  return { result: results[Math.floor((results.length - 1) / 2)]!, low: value(results[0]!), high: value(results[results.length - 1]!) };
}
/** The disk model: per-write cost (nbdkit delay filter) and bandwidth (rate filter, bits per second: 150 MiB/s). */
const DISK_WRITE_DELAY = '4ms';
const DISK_RATE_BITS = '1200M';
/** Seconds of rate the model may burst after a pause (larger than one 4 MiB write at the rate: 27 ms). */
const DISK_BURST_SECONDS = '0.1';
/** Where the disk model keeps its backing file: memory, when the machine has a tmpfs there. */
const DISK_BACKING_DIRECTORY = fs.existsSync('/dev/shm') ? '/dev/shm' : undefined;

/** An origin: a file, or the same file behind the disk model; `spec` is what openDevice takes. */
interface Origin {
  readonly spec: string;
  stop(): Promise<unknown>;
}

async function makeOrigin(kind: 'file' | 'disk', file: string, bytes: number): Promise<Origin> {
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, '');
  fs.truncateSync(file, bytes);
  if (kind === 'file') return { spec: file, stop: async () => fs.rmSync(file, { force: true }) };
  fs.rmSync(`${file}.sock`, { force: true }); // left by an interrupted run in the same directory
  const backing = DISK_BACKING_DIRECTORY ? path.join(DISK_BACKING_DIRECTORY, `blockcache-flush-bench-${process.pid}-${path.basename(file)}`) : file;
  if (backing !== file) {
    fs.rmSync(file, { force: true });
    fs.writeFileSync(backing, '');
    fs.truncateSync(backing, bytes);
  }
  const server: Server = await serveNbdkit('disk model', `${file}.sock`,
    ['file', backing, `wdelay=${DISK_WRITE_DELAY}`, `rate=${DISK_RATE_BITS}`, `burstiness=${DISK_BURST_SECONDS}`], ['noparallel', 'delay', 'rate']);
  return { spec: server.uri, stop: async () => { await server.stop(); fs.rmSync(backing, { force: true }); } };
}

function shuffle(values: number[]): number[] {
  let seed = 12345;
  for (let i = values.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
  return values;
}

async function originSequentialMiBps(originSpec: string, bytes: number): Promise<number> {
  const { device } = await openDevice(originSpec);
  const chunk = Buffer.alloc(4 * MiB, 0x5a);
  const started = performance.now();
  for (let offset = 0; offset < bytes; offset += chunk.length) await device.write(chunk, offset);
  await device.flush();
  const seconds = (performance.now() - started) / 1000;
  await device.close();
  return bytes / MiB / seconds;
}

interface FlushResult { dirtyMiB: number; seconds: number; mibps: number; originWrites: number }

async function flushRun(kind: 'file' | 'disk', variant: 'dense' | 'sparse'): Promise<FlushResult> {
  const originFile = path.join(directory, `origin-${kind}-${variant}.img`);
  const cachePath = path.join(directory, `cache-${variant}.img`);
  fs.rmSync(cachePath, { force: true });
  const originServed = await makeOrigin(kind, originFile, 4 * cacheMiB * MiB);
  fs.writeFileSync(cachePath, '');
  fs.truncateSync(cachePath, cacheMiB * MiB);
  const origin = await openDevice(originServed.spec);
  const cache = await openDevice(cachePath);
  await createCache({ cache: cache.device, origin: origin.device, originLocation: origin.location, mode: 'writeback', blockBytes: BLOCK_BYTES, assoc: 'full' });
  const { engine } = await openCache({ cache: cache.device, origin: origin.device, originLocation: origin.location, settings: { dirtyThresholdPercent: 100 } });
  // 80% of the cache, so that no allocation needs room made.
  const dirtyBlocks = Math.floor((engine.mapping.cacheBlocks * 0.8));
  const stride = variant === 'dense' ? 1 : 2;
  const blocks = shuffle(Array.from({ length: dirtyBlocks }, (_, i) => i * stride));
  const data = Buffer.alloc(BLOCK_BYTES, 0xa5);
  for (let i = 0; i < blocks.length; i += 64) {
    await Promise.all(blocks.slice(i, i + 64).map((block) => engine.write(data, block * BLOCK_BYTES)));
  }
  await engine.flush();
  const writesBefore = engine.stats.writebackBytes;
  const started = performance.now();
  await engine.writebackAll();
  const seconds = (performance.now() - started) / 1000;
  const dirtyMiB = (engine.stats.writebackBytes - writesBefore) / MiB;
  const originWrites = engine.stats.writebacks;
  await engine.close();
  await origin.device.close();
  await cache.device.close();
  await originServed.stop();
  fs.rmSync(cachePath, { force: true });
  return { dirtyMiB, seconds, mibps: dirtyMiB / seconds, originWrites };
}

async function sequentialRun(kind: 'file' | 'disk'): Promise<number> {
  const origin = await makeOrigin(kind, path.join(directory, `origin-${kind}-seq.img`), cacheMiB * MiB);
  try {
    return await originSequentialMiBps(origin.spec, cacheMiB * MiB);
  } finally {
    await origin.stop();
  }
}

function range(low: number, high: number): string {
  return repeats > 1 ? ` (${repeats} runs: ${low.toFixed(0)}–${high.toFixed(0)})` : '';
}

interface Measured { result: FlushResult; low: number; high: number }

function share(run: Measured, sequential: number): string {
  return `${run.result.seconds.toFixed(2)} s, ${run.result.mibps.toFixed(0)} MiB/s${range(run.low, run.high)} = ${((100 * run.result.mibps) / sequential).toFixed(0)}% of sequential`;
}

async function main(): Promise<void> {
  fs.mkdirSync(directory, { recursive: true });
  const lines: string[] = [];
  const json: Record<string, unknown> = { directory, cacheMiB, repeats };
  const flushMedian = (kind: 'file' | 'disk', variant: 'dense' | 'sparse') => median(() => flushRun(kind, variant), (run) => run.mibps);
  const sequentialMedian = (kind: 'file' | 'disk') => median(() => sequentialRun(kind), (mibps) => mibps);
  if (cases.has('file-dense') || cases.has('file-sparse')) {
    const sequential = await sequentialMedian('file');
    json.sequentialMiBps = sequential.result;
    lines.push(`file origin, sequential write (4 MiB writes + fdatasync, ${cacheMiB} MiB): ${sequential.result.toFixed(0)} MiB/s${range(sequential.low, sequential.high)}`);
    if (cases.has('file-dense')) {
      const dense = await flushMedian('file', 'dense');
      json.dense = dense;
      lines.push(`  flush, dense random-order dirty data (${dense.result.dirtyMiB.toFixed(0)} MiB): ${share(dense, sequential.result)}`);
    }
    if (cases.has('file-sparse')) {
      const sparse = await flushMedian('file', 'sparse');
      json.sparse = sparse;
      lines.push(`  flush, sparse (every other block) dirty data (${sparse.result.dirtyMiB.toFixed(0)} MiB): ${share(sparse, sequential.result)}`);
    }
  }
  if (cases.has('disk-dense')) {
    const diskSequential = await sequentialMedian('disk');
    const diskDense = await flushMedian('disk', 'dense');
    Object.assign(json, { diskSequentialMiBps: diskSequential.result, diskDense });
    lines.push(`disk-model origin (nbdkit noparallel, wdelay=${DISK_WRITE_DELAY}, rate=${DISK_RATE_BITS} bit/s, burstiness=${DISK_BURST_SECONDS} s, backing file in ${DISK_BACKING_DIRECTORY ?? 'the bench directory'}), sequential write: ${diskSequential.result.toFixed(0)} MiB/s${range(diskSequential.low, diskSequential.high)}`);
    lines.push(`  flush, dense random-order dirty data (${diskDense.result.dirtyMiB.toFixed(0)} MiB): ${share(diskDense, diskSequential.result)}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stdout.write(`${JSON.stringify(json)}\n`);
}

try {
  await main();
} finally {
  // A directory of our own goes (sockets and pid files of the disk model are left in it).
  if (ownDirectory) fs.rmSync(directory, { recursive: true, force: true });
}
