// Flush benchmark: how fast `flush` (engine.writebackAll) empties a cache full
// of dirty data written in random order, against the origin's own sequential
// write speed (4 MiB writes + fdatasync through the same FileDevice). Goal:
// flush >= 80% of the origin's sequential speed.
//
// The dirty data covers a contiguous origin region in random block order (the
// case sorted, coalesced writeback is for), plus a sparse variant where only
// every other block is dirty (runs cannot coalesce beyond one block).
// Run: npx tsc -p . && node dist/bench/flush.js [DIRECTORY] [CACHE_MIB]
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { openDevice } from '../src/devices/open-device.js';
import { createCache, openCache } from '../src/cache/open-cache.js';

const MiB = 1024 * 1024;
const BLOCK_BYTES = 4096;
const directory = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'blockcache-flush-bench-'));
const cacheMiB = Number(process.argv[3] ?? 256);

function shuffle(values: number[]): number[] {
  let seed = 12345;
  for (let i = values.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
  return values;
}

async function originSequentialMiBps(originPath: string, bytes: number): Promise<number> {
  const { device } = await openDevice(originPath);
  const chunk = Buffer.alloc(4 * MiB, 0x5a);
  const started = performance.now();
  for (let offset = 0; offset < bytes; offset += chunk.length) await device.write(chunk, offset);
  await device.flush();
  const seconds = (performance.now() - started) / 1000;
  await device.close();
  return bytes / MiB / seconds;
}

async function flushRun(variant: 'dense' | 'sparse'): Promise<{ dirtyMiB: number; seconds: number; mibps: number; originWrites: number }> {
  const originPath = path.join(directory, `origin-${variant}.img`);
  const cachePath = path.join(directory, `cache-${variant}.img`);
  for (const file of [originPath, cachePath]) fs.rmSync(file, { force: true });
  fs.writeFileSync(originPath, '');
  fs.truncateSync(originPath, 4 * cacheMiB * MiB);
  fs.writeFileSync(cachePath, '');
  fs.truncateSync(cachePath, cacheMiB * MiB);
  const origin = await openDevice(originPath);
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
  for (const file of [originPath, cachePath]) fs.rmSync(file, { force: true });
  return { dirtyMiB, seconds, mibps: dirtyMiB / seconds, originWrites };
}

async function main(): Promise<void> {
  fs.mkdirSync(directory, { recursive: true });
  const originPath = path.join(directory, 'origin-seq.img');
  fs.writeFileSync(originPath, '');
  fs.truncateSync(originPath, cacheMiB * MiB);
  const sequential = await originSequentialMiBps(originPath, cacheMiB * MiB);
  fs.rmSync(originPath, { force: true });
  const dense = await flushRun('dense');
  const sparse = await flushRun('sparse');
  const lines = [
    `origin sequential write (4 MiB writes + fdatasync, ${cacheMiB} MiB): ${sequential.toFixed(0)} MiB/s`,
    `flush, dense random-order dirty data (${dense.dirtyMiB.toFixed(0)} MiB): ${dense.seconds.toFixed(2)} s, ${dense.mibps.toFixed(0)} MiB/s = ${((100 * dense.mibps) / sequential).toFixed(0)}% of sequential`,
    `flush, sparse (every other block) dirty data (${sparse.dirtyMiB.toFixed(0)} MiB): ${sparse.seconds.toFixed(2)} s, ${sparse.mibps.toFixed(0)} MiB/s = ${((100 * sparse.mibps) / sequential).toFixed(0)}% of sequential`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stdout.write(`${JSON.stringify({ directory, cacheMiB, sequentialMiBps: sequential, dense, sparse })}\n`);
}

await main();
