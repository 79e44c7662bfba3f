// blockcache create: format a cache device for an origin.
import { Command, parseOptions, parseSize, required, UsageError } from '../command.js';
import { openDevice } from '../../devices/open-device.js';
import { createCache } from '../../cache/open-cache.js';
import { CACHE_MODES, CacheMode } from '../../format/superblock.js';
import { DEFAULT_POLICY, POLICY_NAMES } from '../../policies/registry.js';
import { formatBytes } from '../human.js';

const HELP = `usage: blockcache create --cache DEV --origin DEV [options]

Formats DEV as a cache for the origin. DEV and the origin are paths to files or
block devices, or NBD URIs (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH).

  --cache DEV            the fast device that will hold the cache
  --origin DEV           the slow device whose data is cached
  --mode MODE            writeback | writethrough | writearound (default writethrough)
  --block-size SIZE      cache block size, a power of two from 4K to 1M (default 4K)
  --assoc N|full         blocks per set, a power of two, or full (default 512)
  --policy NAME          ${POLICY_NAMES.join(' | ')} (default ${DEFAULT_POLICY})
  --force                overwrite an existing cache that holds no dirty blocks
  --discard-dirty        with --force: overwrite even a cache holding dirty blocks (they are lost)
  -h, --help             show this help`;

export function parseMode(value: string | undefined): CacheMode | undefined {
  if (value === undefined) return undefined;
  if (!(CACHE_MODES as readonly string[]).includes(value)) throw new UsageError(`--mode must be one of ${CACHE_MODES.join(', ')}, not '${value}'`);
  return value as CacheMode;
}

export function parseAssoc(value: string | undefined): number | 'full' | undefined {
  if (value === undefined) return undefined;
  if (value === 'full') return 'full';
  if (!/^\d+$/.test(value) || Number(value) < 1 || (Number(value) & (Number(value) - 1)) !== 0) {
    throw new UsageError(`--assoc must be a power of two or 'full', not '${value}'`);
  }
  return Number(value);
}

export const createCommand: Command = {
  name: 'create',
  summary: 'format a cache device for an origin',
  help: HELP,
  async run(argv) {
    const { values } = parseOptions(argv, {
      cache: { type: 'string' }, origin: { type: 'string' }, mode: { type: 'string' }, 'block-size': { type: 'string' },
      assoc: { type: 'string' }, policy: { type: 'string' }, force: { type: 'boolean' }, 'discard-dirty': { type: 'boolean' },
    });
    const cachePath = required<string>(values.cache, '--cache');
    const originPath = required<string>(values.origin, '--origin');
    const mode = parseMode(values.mode);
    const blockBytes = values['block-size'] !== undefined ? parseSize(values['block-size'], '--block-size') : undefined;
    const assoc = parseAssoc(values.assoc);
    if (values['discard-dirty'] && !values.force) throw new UsageError('--discard-dirty needs --force');
    if (values.policy !== undefined && !POLICY_NAMES.includes(values.policy)) {
      throw new UsageError(`--policy must be one of ${POLICY_NAMES.join(', ')}, not '${values.policy}'`);
    }
    const origin = await openDevice(originPath);
    try {
      const cache = await openDevice(cachePath);
      try {
        const superblock = await createCache({
          cache: cache.device, origin: origin.device, originLocation: origin.location, mode, blockBytes, assoc,
          policy: values.policy, force: values.force, discardDirty: values['discard-dirty'],
        });
        process.stdout.write(`created ${superblock.mode} cache on ${cachePath}: ${superblock.cacheBlocks} blocks of ${formatBytes(superblock.blockBytes)}`
          + ` (${formatBytes(superblock.cacheBlocks * superblock.blockBytes)}), assoc ${superblock.assocFull ? 'full' : superblock.assoc},`
          + ` policy ${superblock.policy}, origin ${origin.location.name} (${formatBytes(origin.device.sizeBytes)})\n`);
      } finally {
        await cache.device.close();
      }
    } finally {
      await origin.device.close();
    }
    return 0;
  },
};
