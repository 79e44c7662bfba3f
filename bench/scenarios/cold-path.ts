// Cold path: 1 MiB sequential reads and writes over an empty cache, the first
// pass over data (a restore, an image copy, a scan), against `nbdkit file` on a
// copy of the same origin. Every round starts blockcache on a freshly created
// cache (served with its defaults, RAM tier included), covers the working set
// once, and stops it; then the peer does the same on its own copy. A read fills
// the cache (origin → cache → client); a write in writeback lands in the cache
// as dirty blocks (the cleaner writes them back later, paced while the client
// is busy).
//
// Each pattern runs twice: on a freshly started server (what a restore right
// after start sees: the pass also pays for the process's warm-up, JIT
// compilation and the batched-I/O workers starting, about half the server's CPU
// of a 256 MiB pass), and on a warm server, which first read and wrote
// WARMUP_BYTES of another region of the origin (the miss path itself, as a
// long-running server sees it). The peer does the same warm-up.
import * as fs from 'node:fs';
import { FioPattern, FioResult, runFio } from '../support/fio.js';
import { markdownTable, ratio, textTable, Cell } from '../support/report.js';
import { serveBlockcache, serveNbdkit } from '../support/servers.js';
import { createCache, formatSize, KiB, MiB, writeOriginImage } from '../support/workspace.js';
import { BenchContext, ScenarioResult } from './context.js';

const WORKING_SET_BYTES = 256 * MiB;
const BLOCK_BYTES = 4 * KiB;
/** The cache holds twice the working set, as on the hot path. */
const CACHE_BLOCKS = (2 * WORKING_SET_BYTES) / BLOCK_BYTES;
/** Rounds per pattern when the run asks for one (a single cold pass is short and noisy). */
const ROUNDS_MIN = 3;

/** Warm-up of a warm server: this much read, then this much written, past the measured range. */
const WARMUP_BYTES = 32 * MiB;
const ORIGIN_BYTES = WORKING_SET_BYTES + 2 * WARMUP_BYTES;

const PATTERNS: FioPattern[] = [
  { label: '1M seqread QD8, cold (fills the cache)', rw: 'read', blockBytes: 1 * MiB, depth: 8, sizeBytes: WORKING_SET_BYTES, rampSeconds: 0, runtimeSeconds: 0, once: true },
  { label: '1M seqwrite QD8, cold (writeback)', rw: 'write', blockBytes: 1 * MiB, depth: 8, sizeBytes: WORKING_SET_BYTES, rampSeconds: 0, runtimeSeconds: 0, once: true },
];

const WARMUP: FioPattern[] = [
  { label: 'warm-up read', rw: 'read', blockBytes: 1 * MiB, depth: 8, offsetBytes: WORKING_SET_BYTES, sizeBytes: WARMUP_BYTES, rampSeconds: 0, runtimeSeconds: 0, once: true },
  { label: 'warm-up write', rw: 'write', blockBytes: 1 * MiB, depth: 8, offsetBytes: WORKING_SET_BYTES + WARMUP_BYTES, sizeBytes: WARMUP_BYTES, rampSeconds: 0, runtimeSeconds: 0, once: true },
];

/** One measured pass on a server: fresh (just started), or warmed up first. */
async function pass(uri: string, pattern: FioPattern, warm: boolean): Promise<FioResult> {
  if (warm) for (const warmup of WARMUP) await runFio(uri, warmup);
  return runFio(uri, pattern);
}

interface ColdRow {
  readonly label: string;
  readonly blockcache: FioResult;
  readonly peer: FioResult;
  readonly roundRatios: number[];
}

function median(results: FioResult[]): FioResult {
  return [...results].sort((a, b) => a.iops - b.iops)[Math.floor((results.length - 1) / 2)]!;
}

export async function coldPath(context: BenchContext): Promise<ScenarioResult> {
  const { workspace, log } = context;
  const origin = workspace.file('cold-origin.img');
  const peerImage = workspace.file('cold-peer.img');
  const cache = workspace.file('cold-cache.img');
  log(`cold path: writing a ${formatSize(ORIGIN_BYTES)} origin`);
  writeOriginImage(origin, ORIGIN_BYTES);
  const rounds = Math.max(ROUNDS_MIN, context.repeat);
  const rows: ColdRow[] = [];
  for (const pattern of PATTERNS) for (const warm of [false, true]) {
    const label = `${pattern.label}, ${warm ? 'warm' : 'fresh'} server`;
    const ours: FioResult[] = [];
    const theirs: FioResult[] = [];
    for (let round = 1; round <= rounds; round++) {
      log(`cold path: ${label} (round ${round} of ${rounds})`);
      fs.rmSync(cache, { force: true });
      createCache(cache, origin, { cacheBlocks: CACHE_BLOCKS, mode: 'writeback' });
      const blockcache = await serveBlockcache({ cache, socket: workspace.file('cold-bc.sock'), nodeFlags: context.nodeFlags });
      try {
        ours.push(await pass(blockcache.uri, pattern, warm));
      } finally {
        await blockcache.stop();
      }
      fs.copyFileSync(origin, peerImage);
      const peerSocket = workspace.file('cold-peer.sock');
      fs.rmSync(peerSocket, { force: true }); // nbdkit leaves its socket behind when stopped
      const peer = await serveNbdkit('nbdkit file', peerSocket, ['file', peerImage]);
      try {
        theirs.push(await pass(peer.uri, pattern, warm));
      } finally {
        await peer.stop();
      }
    }
    rows.push({ label, blockcache: median(ours), peer: median(theirs), roundRatios: ours.map((result, i) => result.iops / theirs[i]!.iops) });
  }
  const header = ['pattern', 'bc MiB/s', 'peer MiB/s', 'ratio', 'bc p50 µs', 'peer p50 µs', 'bc p99 µs', 'peer p99 µs', 'ratio per round'];
  const cells: Cell[][] = rows.map((row) => [
    row.label, row.blockcache.mibPerSecond, row.peer.mibPerSecond, ratio(row.blockcache.iops, row.peer.iops),
    row.blockcache.p50Us, row.peer.p50Us, row.blockcache.p99Us, row.peer.p99Us,
    row.roundRatios.map((value) => value.toFixed(2)).join(' · '),
  ]);
  const title = 'Cold path: the first pass over data, through an empty cache (peer: nbdkit file)';
  const setup = `Origin ${formatSize(ORIGIN_BYTES)} of random data in a file, the first ${formatSize(WORKING_SET_BYTES)} measured; blockcache writeback, 4 KiB blocks, ` +
    `${CACHE_BLOCKS} cache blocks (${formatSize(CACHE_BLOCKS * BLOCK_BYTES)}), \`serve\` defaults (RAM tier 64 MiB); peer \`nbdkit file\` on a copy. ` +
    `fio --ioengine=nbd, one connection, the measured range once per round; ${rounds} rounds, each on a freshly created cache and a freshly started server ` +
    `(a warm server first reads ${formatSize(WARMUP_BYTES)} and writes ${formatSize(WARMUP_BYTES)} past the measured range, so its pass shows the miss path without the process's warm-up; the peer does the same) ` +
    `(blockcache then peer); the table shows each side's median round. Ratio = blockcache / peer (≥ 1 is better). ` +
    `blockcache does more work by design: a read also writes the cache, a write lands in the cache and is written back later.`;
  return {
    markdown: `## ${title}\n\n${setup}\n\n${markdownTable(header, cells)}\n`,
    text: `${title}\n${textTable(header, cells)}\n`,
  };
}
