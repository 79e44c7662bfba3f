// Hot path: everything cached. blockcache (writeback, a cache twice the working
// set so no set overflows) against `nbdkit file` serving a copy of the same data.
// Two scenarios share this code: `hot` serves from the SSD tier alone (RAM tier
// off), `ram` with a RAM tier larger than the working set (issue 8's target).
//
// The cache is warmed by one cold sequential read of the whole working set (that
// read is also reported: it is the miss path, origin → cache → client); with the
// RAM tier on, a second (unreported) pass of hits brings the working set into RAM. Each
// pattern then runs against blockcache and the peer in turn; the block hit ratio
// of every blockcache pattern comes from `blockcache status --json`.
import * as fs from 'node:fs';
import { FioPattern, FioResult, runFio } from '../support/fio.js';
import { markdownTable, percent, ratio, textTable, Cell } from '../support/report.js';
import { blockcacheCli, cacheStatus, hitRatio, Server, serveBlockcache, serveNbdkit } from '../support/servers.js';
import { createCache, formatSize, KiB, MiB, writeOriginImage } from '../support/workspace.js';
import { BenchContext, ScenarioResult } from './context.js';

const WORKING_SET_BYTES = 256 * MiB;
const BLOCK_BYTES = 4 * KiB;
/** A set-associative cache needs slack so that no set overflows with the whole working set. */
const CACHE_OVER_WORKING_SET = 2;

/** A pattern, and runtime settings (`blockcache set KEY=VALUE`) applied while it runs and restored after. */
type HotPattern = FioPattern & { readonly settings?: readonly string[] };

/**
 * The random-write working set (256 MiB) is half the cache, over the default 20% dirty threshold,
 * so the cleaner writes back while the pattern runs (paced: dirty-pace, docs/WRITEBACK.md); the kernel's page cache in front of nbdkit
 * starts writing back only past dirty_background_ratio (10% of RAM) or after 30 s, i.e. never
 * during the run. This threshold puts blockcache in the same position, for a second row.
 */
const DEFERRED_WRITEBACK_THRESHOLD = 'dirty-threshold=60';

function patterns(context: BenchContext): HotPattern[] {
  const common = { sizeBytes: WORKING_SET_BYTES, rampSeconds: context.rampSeconds, runtimeSeconds: context.runtimeSeconds };
  return [
    { ...common, label: '4K randread QD1', rw: 'randread', blockBytes: 4 * KiB, depth: 1 },
    { ...common, label: '4K randread QD32', rw: 'randread', blockBytes: 4 * KiB, depth: 32 },
    { ...common, label: '1M seqread QD8', rw: 'read', blockBytes: 1 * MiB, depth: 8 },
    // Large rewrites of cached data (writeRunOfHits on the SSD tier); not one of issue 7's targets.
    { ...common, label: '1M seqwrite QD8 (writeback)', rw: 'write', blockBytes: 1 * MiB, depth: 8 },
    { ...common, label: '4K randwrite QD32 (writeback)', rw: 'randwrite', blockBytes: 4 * KiB, depth: 32 },
    { ...common, label: '4K randwrite QD32 (writeback, dirty-threshold 60%: no writeback during the run)', rw: 'randwrite', blockBytes: 4 * KiB, depth: 32,
      settings: [DEFERRED_WRITEBACK_THRESHOLD] },
    { ...common, label: '4K 70/30 randrw QD32', rw: 'randrw', readPercent: 70, blockBytes: 4 * KiB, depth: 32 },
  ];
}

export interface HotRow {
  readonly label: string;
  /** With several rounds: each side's median round (by IOPS). */
  readonly blockcache: FioResult;
  readonly peer: FioResult;
  readonly hit: string;
  /** IOPS ratio of every round, in order. */
  readonly roundRatios: readonly number[];
}

/** Which tier serves the hot data. */
export interface HotTier {
  readonly key: 'hot' | 'ram';
  readonly title: string;
  /** serve --ram-cache */
  readonly ramCache: string;
}

export const SSD_TIER: HotTier = { key: 'hot', title: 'Hot path: everything cached on the SSD tier, RAM tier off (peer: nbdkit file)', ramCache: '0' };
/** The RAM tier holds the whole working set, and its dirty bound (half the tier) all of it. */
export const RAM_TIER: HotTier = {
  key: 'ram', title: 'Hot path: working set in the RAM tier (peer: nbdkit file)', ramCache: `${(2 * WORKING_SET_BYTES) / MiB}M`,
};

export const hotPath = (context: BenchContext) => hotPathOn(context, SSD_TIER);
export const ramPath = (context: BenchContext) => hotPathOn(context, RAM_TIER);

async function hotPathOn(context: BenchContext, tier: HotTier): Promise<ScenarioResult & { rows: HotRow[] }> {
  const { workspace, log } = context;
  const origin = workspace.file(`${tier.key}-origin.img`);
  const peerImage = workspace.file(`${tier.key}-peer.img`);
  const cache = workspace.file(`${tier.key}-cache.img`);
  log(`hot path: writing a ${formatSize(WORKING_SET_BYTES)} origin`);
  writeOriginImage(origin, WORKING_SET_BYTES);
  fs.copyFileSync(origin, peerImage);
  const cacheBlocks = (CACHE_OVER_WORKING_SET * WORKING_SET_BYTES) / BLOCK_BYTES;
  createCache(cache, origin, { cacheBlocks, mode: 'writeback' });

  const servers: Server[] = [];
  try {
    const blockcache = await serveBlockcache({ cache, socket: workspace.file(`${tier.key}-bc.sock`), nodeFlags: context.nodeFlags, serveArgs: ['--ram-cache', tier.ramCache] });
    servers.push(blockcache);
    const peer = await serveNbdkit('nbdkit file', workspace.file(`${tier.key}-peer.sock`), ['file', peerImage]);
    servers.push(peer);

    const fill: FioPattern = { label: '1M seqread QD8, cold (miss path, fills the cache)', rw: 'read', blockBytes: 1 * MiB, depth: 8,
      sizeBytes: WORKING_SET_BYTES, rampSeconds: 0, runtimeSeconds: 0, once: true };
    const rows: HotRow[] = [];
    rows.push(await measure(context, fill, blockcache, peer, 1));
    // A cold run is not kept in RAM (docs/ARCHITECTURE.md, "The RAM tier"); a second pass, all hits, puts it there.
    if (tier.ramCache !== '0') await runFio(blockcache.uri, fill);
    const warm = cacheStatus(blockcache.control!);
    log(`hot path: warmed, ${warm.validBlocks} of ${WORKING_SET_BYTES / BLOCK_BYTES} working-set blocks cached, ${warm.ramBlocks} in RAM, ${warm.evictions} evictions`);
    const selected = patterns(context).filter((pattern) => context.patternFilter === undefined || pattern.label.includes(context.patternFilter));
    for (const pattern of selected) rows.push(await measure(context, pattern, blockcache, peer, context.repeat));
    return { ...tables(context, tier, rows, cacheBlocks), rows };
  } finally {
    for (const server of servers.reverse()) await server.stop();
  }
}

/** The median result by IOPS (the lower middle one of an even count). */
function medianByIops(results: FioResult[]): FioResult {
  return [...results].sort((a, b) => a.iops - b.iops)[Math.floor((results.length - 1) / 2)]!;
}

/**
 * Runs `pattern` against blockcache then the peer, `rounds` times in turn, so a
 * change in the machine's load hits both sides alike.
 */
async function measure(context: BenchContext, pattern: HotPattern, blockcache: Server, peer: Server, rounds: number): Promise<HotRow> {
  const ours: FioResult[] = [];
  const theirs: FioResult[] = [];
  const control = blockcache.control!;
  const restore = pattern.settings === undefined ? [] : changeSettings(control, pattern.settings);
  const before = cacheStatus(control);
  try {
    for (let round = 1; round <= rounds; round++) {
      context.log(`hot path: ${pattern.label}${rounds > 1 ? ` (round ${round} of ${rounds})` : ''}`);
      ours.push(await runFio(blockcache.uri, pattern));
      theirs.push(await runFio(peer.uri, pattern));
    }
  } finally {
    if (restore.length > 0) blockcacheCli(['set', '--control', control, ...restore]);
  }
  const after = cacheStatus(control);
  const hits = hitRatio(before, after);
  const hit = [Number.isFinite(hits.read) ? `r ${percent(hits.read)}` : '', Number.isFinite(hits.write) ? `w ${percent(hits.write)}` : '']
    .filter((part) => part !== '').join(', ');
  const roundRatios = ours.map((result, i) => result.iops / theirs[i]!.iops);
  return { label: pattern.label, blockcache: medianByIops(ours), peer: medianByIops(theirs), hit, roundRatios };
}

/** Applies `settings` (KEY=VALUE) to the running server; returns the KEY=VALUE list that restores them. */
function changeSettings(control: string, settings: readonly string[]): string[] {
  const current = JSON.parse(blockcacheCli(['set', '--control', control, '--json'])) as Record<string, string>;
  const restore = settings.map((setting) => {
    const key = setting.slice(0, setting.indexOf('='));
    if (!(key in current)) throw new Error(`bench: no setting ${key}`);
    return `${key}=${current[key]}`;
  });
  blockcacheCli(['set', '--control', control, ...settings]);
  return restore;
}

const HEADER = ['pattern', 'bc IOPS', 'peer IOPS', 'IOPS ratio', 'bc MiB/s', 'peer MiB/s', 'bc p50 µs', 'peer p50 µs',
  'bc p99 µs', 'peer p99 µs', 'p99 ratio', 'bc hit ratio', 'fio CPU bc · peer', 'fio sleeps/IO bc · peer'];

function tables(context: BenchContext, tier: HotTier, rows: readonly HotRow[], cacheBlocks: number): ScenarioResult {
  const rounds = context.repeat > 1;
  const header = rounds ? [...HEADER, 'IOPS ratio per round'] : HEADER;
  const cells: Cell[][] = rows.map((row) => [
    row.label, row.blockcache.iops, row.peer.iops, ratio(row.blockcache.iops, row.peer.iops),
    row.blockcache.mibPerSecond, row.peer.mibPerSecond, row.blockcache.p50Us, row.peer.p50Us,
    row.blockcache.p99Us, row.peer.p99Us, ratio(row.blockcache.p99Us, row.peer.p99Us), row.hit,
    `${row.blockcache.clientCpuPercent.toFixed(0)}% · ${row.peer.clientCpuPercent.toFixed(0)}%`,
    `${row.blockcache.clientSwitchesPerIo.toFixed(2)} · ${row.peer.clientSwitchesPerIo.toFixed(2)}`,
    ...(rounds ? [row.roundRatios.map((value) => value.toFixed(2)).join(' · ')] : []),
  ]);
  const setup = `Working set ${formatSize(WORKING_SET_BYTES)} of random data; blockcache writeback, 4 KiB blocks, ` +
    `${cacheBlocks} cache blocks (${formatSize(cacheBlocks * BLOCK_BYTES)}), default assoc and policy, \`--ram-cache ${tier.ramCache}\`; ` +
    `peer \`nbdkit file\` on a copy. ` +
    `fio --ioengine=nbd, one connection, ${context.rampSeconds} s ramp + ${context.runtimeSeconds} s per pattern ` +
    `(the cold fill runs once over the working set)` +
    (rounds ? `; every other pattern ran ${context.repeat} rounds of blockcache then peer, and the table shows each side's median round` : '') +
    `. IOPS ratio = blockcache / peer (≥ 1 is better); ` +
    `p99 ratio = blockcache / peer (≤ 1 is better). Hit ratio: block hits / block lookups during that pattern. ` +
    `fio CPU: the client's own user + system time over the run, as a share of one core; near 100% with few sleeps per I/O, ` +
    `fio itself bounds the IOPS (its nbd engine makes the same system calls per I/O whichever server answers).`;
  return {
    markdown: `## ${tier.title}\n\n${setup}\n\n${markdownTable(header, cells)}\n`,
    text: `${tier.title}\n${textTable(header, cells)}\n`,
  };
}
