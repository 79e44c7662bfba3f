// blockcache status: live figures from a running server, or the persisted
// state of a stopped cache.
import { Command, parseOptions, UsageError } from '../command.js';
import { controlRequest } from '../../control/control-server.js';
import { CacheStatus, offlineStatus } from '../../control/status.js';
import { openDevice } from '../../devices/open-device.js';
import { checkCache } from '../../metadata/check.js';
import { BlockcacheError } from '../../stdx/errors.js';
import { formatBytes, formatPercent } from '../human.js';

const HELP = `usage: blockcache status (--control PATH | --cache DEV) [--json] [--watch]

  --control PATH   ask a running server through its control socket
  --cache DEV      read the persisted state of a cache that is not being served
  --json           print one JSON object (the fields of CONTRACT.md)
  --watch          with --control: refresh the view every second until interrupted
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
    `dirty      ${status.dirtyBlocks} blocks, ${formatBytes(status.dirtyBytes)}`,
    `reads      ${status.reads} requests; block hits ${status.readHits}, misses ${status.readMisses} (hit ratio ${formatPercent(status.readHits, reads)})`,
    `writes     ${status.writes} requests; block hits ${status.writeHits}, misses ${status.writeMisses} (hit ratio ${formatPercent(status.writeHits, writes)})`,
    `evictions  ${status.evictions}, writebacks ${status.writebacks}, uncached reads ${status.uncachedReads}, uncached writes ${status.uncachedWrites}`,
    `errors     cache ${status.cacheErrors}, origin ${status.originErrors}`,
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
    if (values.help) { process.stdout.write(`${HELP}\n`); return 0; }
    if ((values.control === undefined) === (values.cache === undefined)) throw new UsageError('give exactly one of --control PATH or --cache DEV');
    if (values.watch && values.control === undefined) throw new UsageError('--watch needs --control (a running server)');
    const show = (status: CacheStatus) => (values.json ? JSON.stringify(status) : formatStatus(status));
    if (!values.watch) {
      const status = values.control !== undefined ? await fetchStatus(values.control) : await offline(values.cache!);
      process.stdout.write(`${show(status)}\n`);
      return 0;
    }
    let stop = false;
    process.once('SIGINT', () => (stop = true));
    while (!stop) {
      const status = await fetchStatus(values.control!);
      if (process.stdout.isTTY && !values.json) process.stdout.write(`\x1b[H\x1b[2J${show(status)}\n`);
      else process.stdout.write(`${show(status)}\n`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    return 0;
  },
};
