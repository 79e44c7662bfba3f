// blockcache status: live figures from a running server, or the persisted
// state of a stopped cache.
import { Command, parseOptions, UsageError } from '../command.js';
import { controlRequest } from '../../control/control-server.js';
import { CacheStatus, offlineStatus } from '../../control/status.js';
import { openDevice } from '../../devices/open-device.js';
import { checkCache } from '../../metadata/check.js';
import { BlockcacheError } from '../../stdx/errors.js';
import { formatBytes, formatDuration, formatPercent } from '../human.js';

const HELP = `usage: blockcache status (--control PATH | --cache DEV) [--json] [--watch]

  --control PATH   ask a running server through its control socket
  --cache DEV      read the persisted state of a cache that is not being served
  --json           print one JSON object (the fields of CONTRACT.md)
  --watch          with --control: a live view (IOPS, hit ratios, dirty, cleaning rate, ETA)
                   refreshed in place every second until interrupted (with --json: one line a second)
  -h, --help       show this help`;

export async function fetchStatus(control: string): Promise<CacheStatus> {
  const response = await controlRequest(control, 'GET', '/status', undefined, 10_000);
  if (response.status !== 200) throw new BlockcacheError('EIO', `control socket ${control}: ${response.body}`);
  return JSON.parse(response.body) as CacheStatus;
}

export function formatStatus(status: CacheStatus): string {
  const reads = status.readHits + status.readMisses;
  const writes = status.writeHits + status.writeMisses;
  return [
    `state      ${status.state}${status.cleanShutdown === false ? ' (not shut down cleanly: will recover on serve)' : ''}`,
    `mode       ${status.mode}, policy ${status.policy}, block ${formatBytes(status.blockSize)}, assoc ${status.assoc}`,
    `origin     ${status.origin} (${formatBytes(status.originBytes)})`,
    `cached     ${status.validBlocks} of ${status.cacheBlocks} blocks (${formatPercent(status.validBlocks, status.cacheBlocks)})`,
    `dirty      ${status.dirtyBlocks} blocks, ${formatBytes(status.dirtyBytes)} (${formatPercent(status.dirtyBlocks, status.cacheBlocks)} of the cache`
      + `${status.dirtyThresholdPercent !== undefined ? `, threshold ${status.dirtyThresholdPercent}%` : ''})`,
    ...(status.state === 'stopped' ? [] : [`cleaning   ${formatBytes(status.writebackRateBytesPerSecond ?? 0)}/s, time to clean ${formatEta(status)}${formatPace(status)}`]),
    `reads      ${status.reads} requests; block hits ${status.readHits}, misses ${status.readMisses} (hit ratio ${formatPercent(status.readHits, reads)})`,
    `writes     ${status.writes} requests; block hits ${status.writeHits}, misses ${status.writeMisses} (hit ratio ${formatPercent(status.writeHits, writes)})`,
    ...(typeof status.ramBytes === 'number' && status.ramBytes > 0 ? [
      `ram        ${formatBytes(status.ramBytes)}: ${String(status.ramBlocks)} blocks, ${String(status.ramDirtyBlocks)} dirty;`
        + ` ${String(status.ramReadHits)} block reads answered from RAM, ${String(status.ramWriteAbsorbs)} block writes completed in RAM`,
    ] : []),
    `evictions  ${status.evictions}, writebacks ${status.writebacks}, uncached reads ${status.uncachedReads}, uncached writes ${status.uncachedWrites}`,
    ...(typeof status.readaheadBytes === 'number' ? [
      `readahead  ${status.readaheadBytes > 0 ? `${formatBytes(status.readaheadBytes)} window` : 'off'}: ${String(status.readaheadBlocks)} blocks fetched next to misses`
        + `${typeof status.readaheadFailures === 'number' && status.readaheadFailures > 0 ? `, ${status.readaheadFailures} wider reads failed (retried alone)` : ''}`,
    ] : []),
    `errors     cache ${status.cacheErrors}, origin ${status.originErrors}`
      + `${typeof status.recordsDeferred === 'number' && status.recordsDeferred > 0 ? `; ${status.recordsDeferred} metadata records deferred (unreadable pages)` : ''}`,
    ...(typeof status.metadataMemoryBytes === 'number' ? [
      `memory     metadata ${formatBytes(status.metadataMemoryBytes)} (${(status.metadataMemoryBytes / status.cacheBlocks).toFixed(1)} B per cache block),`
        + ` process resident ${formatBytes(status.residentMemoryBytes as number)}`,
    ] : []),
  ].join('\n');
}

/** Paced cleaning (dirty-pace) is shown, so that a slow clean under load is not mistaken for a fault. */
function formatPace(status: CacheStatus): string {
  const pace = status.writebackPaceBytesPerSecond as number | undefined;
  return pace ? `; paced to ${formatBytes(pace)}/s while clients are busy` : '';
}

function formatEta(status: CacheStatus): string {
  if (status.cleanEtaSeconds === null || status.cleanEtaSeconds === undefined) return 'unknown (nothing written back yet)';
  return formatDuration(status.cleanEtaSeconds);
}

function perSecond(now: CacheStatus, before: CacheStatus | undefined, field: string, seconds: number): number {
  if (!before || seconds <= 0) return 0;
  return Math.max(0, ((now[field] as number) - (before[field] as number)) / seconds);
}

/** The live view: rates over the last refresh interval, then the full status. */
export function formatWatch(now: CacheStatus, before: CacheStatus | undefined, seconds: number): string {
  const rate = (field: string) => perSecond(now, before, field, seconds);
  const intervalRatio = (hits: string, misses: string) => formatPercent(rate(hits), rate(hits) + rate(misses));
  return [
    `blockcache ${now.state} — ${new Date().toLocaleTimeString()} (Ctrl-C to quit)`,
    '',
    `IOPS       read ${rate('reads').toFixed(0)}/s (${formatBytes(rate('bytesRead'))}/s), write ${rate('writes').toFixed(0)}/s (${formatBytes(rate('bytesWritten'))}/s)`,
    `hit ratio  now: read ${intervalRatio('readHits', 'readMisses')}, write ${intervalRatio('writeHits', 'writeMisses')};`
      + ` since start: read ${formatPercent(now.readHits, now.readHits + now.readMisses)}, write ${formatPercent(now.writeHits, now.writeHits + now.writeMisses)}`,
    `bypass     ${rate('sequentialBypassReads').toFixed(0)} reads/s, ${rate('sequentialBypassWrites').toFixed(0)} writes/s (blocks)`,
    '',
    formatStatus(now),
  ].join('\n');
}

async function offline(cachePath: string): Promise<CacheStatus> {
  const cache = await openDevice(cachePath);
  try {
    const report = await checkCache(cache.device);
    return offlineStatus(report.superblock, report.cleanRecords + report.dirtyRecords, report.dirtyRecords);
  } finally {
    await cache.device.close();
  }
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'show a cache\'s state and counters',
  help: HELP,
  async run(argv) {
    const { values } = parseOptions(argv, { control: { type: 'string' }, cache: { type: 'string' }, json: { type: 'boolean' }, watch: { type: 'boolean' } });
    if ((values.control === undefined) === (values.cache === undefined)) throw new UsageError('give exactly one of --control PATH or --cache DEV');
    if (values.watch && values.control === undefined) throw new UsageError('--watch needs --control (a running server)');
    const show = (status: CacheStatus) => (values.json ? JSON.stringify(status) : formatStatus(status));
    if (!values.watch) {
      const status = values.control !== undefined ? await fetchStatus(values.control) : await offline(values.cache!);
      process.stdout.write(`${show(status)}\n`);
      return 0;
    }
    let stop = false;
    let wake: (() => void) | undefined;
    process.once('SIGINT', () => { stop = true; wake?.(); });
    const terminal = process.stdout.isTTY === true && !values.json;
    let before: CacheStatus | undefined;
    let beforeMs = 0;
    if (terminal) process.stdout.write('\x1b[?25l\x1b[2J');
    try {
      while (!stop) {
        const status = await fetchStatus(values.control!);
        const nowMs = performance.now();
        if (terminal) {
          // Redraw in place: home, each line cleared to its end, then the rest of the screen cleared.
          const view = formatWatch(status, before, (nowMs - beforeMs) / 1000).split('\n').map((line) => `${line}\x1b[K`).join('\n');
          process.stdout.write(`\x1b[H${view}\n\x1b[J`);
        } else process.stdout.write(`${show(status)}\n`);
        before = status;
        beforeMs = nowMs;
        await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 1000); });
      }
    } finally {
      if (terminal) process.stdout.write('\x1b[?25h');
    }
    return 0;
  },
};
