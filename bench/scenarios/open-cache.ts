// Opening a cache of one million blocks: time from `blockcache serve` starting
// to its 'ready' line, for a fresh (empty) cache and for a full one (every
// block cached and dirty, after a clean shutdown), and memory per cache block:
// the engine's own count (`status` metadataMemoryBytes), and resident memory
// (RSS of the full 1M-block server - RSS of a 512-block server) / blocks.
// Both are filled with dirty data first, so both start the writeback I/O workers
// (a fixed cost of about 50 MiB, not memory per cache block), and both are
// measured with background writeback paused: otherwise the full cache's
// writeback buffers in flight (bounded by the writeback concurrency, not by the
// cache's size) land in its RSS while the small cache has finished cleaning.
// There is no peer (nbdkit's cache filter keeps nothing across restarts).
import { FioPattern, runFio } from '../support/fio.js';
import { Cell, markdownTable, textTable } from '../support/report.js';
import { cacheStatus, residentBytes, serveBlockcache } from '../support/servers.js';
import { createCache, KiB, MiB, sparseFile } from '../support/workspace.js';
import { BenchContext, ScenarioResult } from './context.js';

/** The smallest multiple of the default associativity (512) at or above one million. */
const CACHE_BLOCKS = 1_000_448;
const SMALL_CACHE_BLOCKS = 512;
const BLOCK_BYTES = 4 * KiB;
const TARGET_READY_MS = 1000;
const TARGET_BYTES_PER_BLOCK = 16;

/** Background writeback paused while memory is measured (see the file comment). */
const NO_WRITEBACK = ['--set', 'dirty-threshold=100', '--set', 'dirty-max-age=off'];
/** Time for the process to settle (lazy allocations right after ready) before reading RSS. */
const SETTLE_MS = 1000;

async function openOnce(context: BenchContext, cache: string, socket: string): Promise<{ readyMs: number; rssBytes: number; metadataBytes: number }> {
  // RAM tier off: its arena is a fixed cost chosen by the user, not metadata per cache block.
  const server = await serveBlockcache({ cache, socket: context.workspace.file(socket), serveArgs: ['--ram-cache', '0', ...NO_WRITEBACK] });
  try {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const metadataBytes = cacheStatus(server.control!).metadataMemoryBytes;
    return { readyMs: server.readyMs, rssBytes: residentBytes(server.pid), metadataBytes };
  } finally {
    await server.stop();
  }
}

/** Writes every block of `cache` through NBD (writeback: all dirty); returns the seconds taken. */
async function fill(context: BenchContext, cache: string, blocks: number): Promise<number> {
  const pattern: FioPattern = { label: 'fill', rw: 'write', blockBytes: 1 * MiB, depth: 8, sizeBytes: blocks * BLOCK_BYTES,
    rampSeconds: 0, runtimeSeconds: 0, once: true };
  const filler = await serveBlockcache({ cache, socket: context.workspace.file(`open-fill-${blocks}.sock`) });
  const started = performance.now();
  try {
    await runFio(filler.uri, pattern);
    return (performance.now() - started) / 1000;
  } finally {
    await filler.stop();
  }
}

export async function openCache(context: BenchContext): Promise<ScenarioResult> {
  const { workspace, log } = context;
  const origin = workspace.file('open-origin.img');
  sparseFile(origin, CACHE_BLOCKS * BLOCK_BYTES);
  const cache = workspace.file('open-cache.img');
  createCache(cache, origin, { cacheBlocks: CACHE_BLOCKS, mode: 'writeback' });
  // Its own origin: its writeback changes the origin, which the big cache would rightly refuse.
  const smallOrigin = workspace.file('open-small-origin.img');
  sparseFile(smallOrigin, CACHE_BLOCKS * BLOCK_BYTES);
  const small = workspace.file('open-small-cache.img');
  createCache(small, smallOrigin, { cacheBlocks: SMALL_CACHE_BLOCKS, mode: 'writeback' });

  log('open: an empty one-million-block cache');
  const empty = await openOnce(context, cache, 'open-empty.sock');

  log(`open: filling all ${CACHE_BLOCKS} blocks (writeback, sequential 1 MiB writes)`);
  const fillSeconds = await fill(context, cache, CACHE_BLOCKS);
  log('open: filling a small cache (baseline memory)');
  await fill(context, small, SMALL_CACHE_BLOCKS);
  log('open: the small cache (baseline memory)');
  const baseline = await openOnce(context, small, 'open-small.sock');
  log('open: the full one-million-block cache');
  const full = await openOnce(context, cache, 'open-full.sock');

  const perBlock = (full.rssBytes - baseline.rssBytes) / CACHE_BLOCKS;
  const HEADER = ['measure', 'value', 'target'];
  const cells: Cell[][] = [
    ['time to ready, empty 1M-block cache (ms)', empty.readyMs, `< ${TARGET_READY_MS}`],
    ['time to ready, full 1M-block cache, all dirty (ms)', full.readyMs, `< ${TARGET_READY_MS}`],
    ['time to ready, 512-block cache, all dirty (ms): node start-up and fixed cost', baseline.readyMs, ''],
    ['RSS, 512-block cache, all dirty (MiB)', baseline.rssBytes / MiB, ''],
    ['RSS, empty 1M-block cache (MiB)', empty.rssBytes / MiB, ''],
    ['RSS, full 1M-block cache (MiB)', full.rssBytes / MiB, ''],
    ['metadata bytes per cache block, full 1M-block cache (`status` metadataMemoryBytes / blocks)', full.metadataBytes / CACHE_BLOCKS, `≤ ${TARGET_BYTES_PER_BLOCK}`],
    ['resident bytes per cache block (full - 512-block) / blocks', perBlock, `≤ ${TARGET_BYTES_PER_BLOCK} + fixed`],
  ];
  const setup = `${CACHE_BLOCKS.toLocaleString('en-US')} cache blocks of 4 KiB (default assoc 512 and policy), writeback, \`--ram-cache 0\`, over a sparse origin; ` +
    `servers measured with background writeback paused (\`--set dirty-threshold=100 --set dirty-max-age=off\`), ${SETTLE_MS} ms after ready. ` +
    `Time to ready is measured from spawning \`node dist/src/cli/main.js serve\` to its 'ready' line, so it includes node's start-up ` +
    `(see the 512-block row). Filling the cache through NBD took ${fillSeconds.toFixed(1)} s.`;
  return {
    markdown: `## Opening a one-million-block cache\n\n${setup}\n\n${markdownTable(HEADER, cells)}\n`,
    text: `Opening a one-million-block cache\n${textTable(HEADER, cells)}\n`,
  };
}
