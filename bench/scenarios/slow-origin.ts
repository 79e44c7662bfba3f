// Slow origin: an nbdkit origin that takes 2 ms per request, one request at a
// time (the delay and noparallel filters: about 500 IOPS, like a disk).
// blockcache with a 256 MiB cache against nbdkit's cache filter (cache-on-read,
// the same size and block size) over that same origin, zipf 1.2 over 1 GiB,
// each after the same warm-up. Two variants: reads only (writethrough), and
// write-heavy (30% reads) in writeback mode.
import { FioPattern, FioResult, runFio } from '../support/fio.js';
import { Cell, markdownTable, percent, ratio, textTable } from '../support/report.js';
import { cacheStatus, hitRatio, Server, serveBlockcache, serveNbdkit } from '../support/servers.js';
import { createCache, formatSize, GiB, KiB, MiB, writeOriginImage } from '../support/workspace.js';
import { BenchContext, ScenarioResult } from './context.js';

const ORIGIN_BYTES = 1 * GiB;
const CACHE_BYTES = 256 * MiB;
const BLOCK_BYTES = 4 * KiB;
const ORIGIN_DELAY = '2ms';
const DEPTH = 16;

interface Variant {
  readonly name: string;
  readonly mode: 'writethrough' | 'writeback';
  readonly readPercent: number;
}

const VARIANTS: readonly Variant[] = [
  { name: 'zipf 1.2 4K random read', mode: 'writethrough', readPercent: 100 },
  { name: 'zipf 1.2 4K 30/70 read/write (writeback)', mode: 'writeback', readPercent: 30 },
];

interface SlowRow {
  readonly variant: Variant;
  readonly blockcache: FioResult;
  readonly peer: FioResult;
  readonly hit: string;
}

export async function slowOrigin(context: BenchContext): Promise<ScenarioResult> {
  const { workspace, log } = context;
  const originImage = workspace.file('slow-origin.img');
  log(`slow origin: writing a ${formatSize(ORIGIN_BYTES)} origin`);
  writeOriginImage(originImage, ORIGIN_BYTES);
  const originServer = await serveNbdkit('slow origin', workspace.file('slow-origin.sock'),
    ['file', originImage, `rdelay=${ORIGIN_DELAY}`, `wdelay=${ORIGIN_DELAY}`], ['noparallel', 'delay']);
  const rows: SlowRow[] = [];
  try {
    for (const variant of VARIANTS) rows.push(await runVariant(context, variant, originServer.uri));
  } finally {
    await originServer.stop();
  }
  return tables(context, rows);
}

async function runVariant(context: BenchContext, variant: Variant, originUri: string): Promise<SlowRow> {
  const { workspace, log } = context;
  const tag = variant.mode;
  const pattern: FioPattern = {
    label: variant.name, rw: variant.readPercent === 100 ? 'randread' : 'randrw', readPercent: variant.readPercent === 100 ? undefined : variant.readPercent,
    blockBytes: BLOCK_BYTES, depth: DEPTH, sizeBytes: ORIGIN_BYTES, distribution: 'zipf:1.2',
    rampSeconds: context.warmupSeconds, runtimeSeconds: context.runtimeSeconds,
  };
  const cache = workspace.file(`slow-cache-${tag}.img`);
  createCache(cache, originUri, { cacheBlocks: CACHE_BYTES / BLOCK_BYTES, mode: variant.mode });
  let server: Server = await serveBlockcache({ cache, socket: workspace.file(`slow-bc-${tag}.sock`), nodeFlags: context.nodeFlags });
  let blockcache: FioResult;
  let hit: string;
  try {
    log(`slow origin: blockcache, ${variant.name} (${context.warmupSeconds} s warm-up)`);
    const before = cacheStatus(server.control!);
    blockcache = await runFio(server.uri, pattern);
    const hits = hitRatio(before, cacheStatus(server.control!));
    hit = [Number.isFinite(hits.read) ? `r ${percent(hits.read)}` : '', Number.isFinite(hits.write) ? `w ${percent(hits.write)}` : '']
      .filter((part) => part !== '').join(', ');
  } finally {
    await server.stop();
  }
  log(`slow origin: nbdkit cache filter, ${variant.name}`);
  server = await serveNbdkit('nbdkit cache filter', workspace.file(`slow-peer-${tag}.sock`), [
    'nbd', `uri=${originUri}`, 'cache-on-read=true', `cache-max-size=${CACHE_BYTES}`, `cache-min-block-size=${BLOCK_BYTES}`,
    `cache=${variant.mode}`,
  ], ['cache']);
  let peer: FioResult;
  try {
    peer = await runFio(server.uri, pattern);
  } finally {
    await server.stop();
  }
  return { variant, blockcache, peer, hit };
}

const HEADER = ['workload', 'bc IOPS', 'peer IOPS', 'IOPS ratio', 'bc p50 µs', 'peer p50 µs', 'bc p99 µs', 'peer p99 µs', 'bc hit ratio (measured part)'];

function tables(context: BenchContext, rows: readonly SlowRow[]): ScenarioResult {
  const cells: Cell[][] = rows.map((row) => [
    row.variant.name, row.blockcache.iops, row.peer.iops, ratio(row.blockcache.iops, row.peer.iops),
    row.blockcache.p50Us, row.peer.p50Us, row.blockcache.p99Us, row.peer.p99Us, row.hit,
  ]);
  const setup = `Origin: ${formatSize(ORIGIN_BYTES)} file behind \`nbdkit --filter=noparallel --filter=delay file rdelay=${ORIGIN_DELAY} wdelay=${ORIGIN_DELAY}\` ` +
    `(one request at a time, ~500 IOPS). Cache ${formatSize(CACHE_BYTES)} of ${BLOCK_BYTES / KiB} KiB blocks for both: blockcache (default assoc and policy) ` +
    `and \`nbdkit --filter=cache nbd cache-on-read=true cache-max-size=${formatSize(CACHE_BYTES)} cache-min-block-size=4K\` in the same mode. ` +
    `fio zipf:1.2 over the whole origin, depth ${DEPTH}, one connection, ${context.warmupSeconds} s warm-up (fio ramp) + ${context.runtimeSeconds} s measured, ` +
    `starting from an empty cache. Target: IOPS ratio ≥ 3 on the read workload.`;
  return {
    markdown: `## Slow origin (peer: nbdkit cache filter)\n\n${setup}\n\n${markdownTable(HEADER, cells)}\n`,
    text: `Slow origin (peer: nbdkit cache filter)\n${textTable(HEADER, cells)}\n`,
  };
}
