// blockcache start-default (what `npm start` runs): serve the default cache
// under ./data, creating a sparse origin file and a cache file on first run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, parseOptions } from '../command.js';
import { openDevice } from '../../devices/open-device.js';
import { createCache } from '../../cache/open-cache.js';
import { GiB, MiB } from '../../constants.js';
import { isBlockcacheError } from '../../stdx/errors.js';
import { readSuperblock } from '../../metadata/metadata-store.js';
import { serve } from './serve.js';

/** The embedded default configuration. */
export const DEFAULT_CONFIGURATION = {
  directory: 'data',
  originFile: 'origin.img',
  originBytes: 1 * GiB,
  cacheFile: 'cache.img',
  cacheBytes: 256 * MiB,
  mode: 'writeback' as const,
  socketFile: 'blockcache.sock',
  controlFile: 'blockcache.control',
};

const HELP = `usage: blockcache start-default [--dir DIR]

Serves the default cache (what 'npm start' runs): a ${DEFAULT_CONFIGURATION.originBytes / GiB} GiB sparse origin file and a
${DEFAULT_CONFIGURATION.cacheBytes / MiB} MiB ${DEFAULT_CONFIGURATION.mode} cache file under DIR (default ./${DEFAULT_CONFIGURATION.directory}), created on first run,
on the Unix socket DIR/${DEFAULT_CONFIGURATION.socketFile}.`;

async function ensureCache(originPath: string, cachePath: string): Promise<void> {
  const origin = await openDevice(originPath, { createSizeBytes: DEFAULT_CONFIGURATION.originBytes });
  const cache = await openDevice(cachePath, { createSizeBytes: DEFAULT_CONFIGURATION.cacheBytes });
  try {
    await readSuperblock(cache.device);
  } catch (error) {
    if (!isBlockcacheError(error, 'NOT_A_CACHE')) throw error;
    await createCache({ cache: cache.device, origin: origin.device, originLocation: origin.location, mode: DEFAULT_CONFIGURATION.mode });
    process.stderr.write(`blockcache: created ${cachePath} caching ${originPath}\n`);
  } finally {
    await cache.device.close();
    await origin.device.close();
  }
}

export const startDefaultCommand: Command = {
  name: 'start-default',
  summary: 'serve the default cache under ./data (npm start)',
  help: HELP,
  async run(argv) {
    const { values } = parseOptions(argv, { dir: { type: 'string' } });
    const directory = path.resolve(values.dir ?? DEFAULT_CONFIGURATION.directory);
    fs.mkdirSync(directory, { recursive: true });
    const originPath = path.join(directory, DEFAULT_CONFIGURATION.originFile);
    const cachePath = path.join(directory, DEFAULT_CONFIGURATION.cacheFile);
    await ensureCache(originPath, cachePath);
    const socket = path.join(directory, DEFAULT_CONFIGURATION.socketFile);
    const control = path.join(directory, DEFAULT_CONFIGURATION.controlFile);
    return serve({
      cache: cachePath, socket, control,
      onReady: ({ uri }) => process.stderr.write([
        '',
        'Connect with:',
        `  nbdinfo '${uri}'`,
        `  mkdir -p mnt && nbdfuse mnt '${uri}' &     # then: mkfs.ext4 mnt/nbd (as root: losetup + mount)`,
        `  nbd-client -unix ${socket} /dev/nbd0      # Linux kernel client (needs the nbd module)`,
        `  node bin/blockcache status --control ${control}`,
        'Stop with Ctrl-C (dirty blocks stay cached; `blockcache detach` writes them back).',
        '',
      ].join('\n')),
    });
  },
};
