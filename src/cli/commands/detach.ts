// blockcache detach: with the server stopped, write every dirty block back so
// the origin alone is complete, then mark the cache clean.
import { Command, parseOptions, required } from '../command.js';
import { openDevice } from '../../devices/open-device.js';
import { openCache } from '../../cache/open-cache.js';
import { readSuperblock } from '../../metadata/metadata-store.js';
import { formatBytes } from '../human.js';

const HELP = `usage: blockcache detach --cache DEV [--origin DEV] [--force]

With the server stopped: writes every dirty block back to the origin so that
the origin alone is complete, then marks the cache clean. Progress on stderr.

  --cache DEV      the cache device
  --origin DEV     the origin, if it moved (its identity must match)
  --force          write back even over an origin whose identity changed
  -h, --help       show this help`;

export const detachCommand: Command = {
  name: 'detach',
  summary: 'write back all dirty blocks of a stopped cache',
  help: HELP,
  async run(argv) {
    const { values } = parseOptions(argv, { cache: { type: 'string' }, origin: { type: 'string' }, force: { type: 'boolean' } });
    const cache = await openDevice(required<string>(values.cache, '--cache'));
    try {
      const { superblock } = await readSuperblock(cache.device);
      const origin = await openDevice(values.origin ?? superblock.origin.name);
      try {
        const { engine } = await openCache({
          cache: cache.device, origin: origin.device, originLocation: origin.location,
          relocated: values.origin !== undefined, force: values.force, commitIntervalMs: 0,
        });
        const total = engine.table.dirtyCount;
        let last = 0;
        await engine.writebackAll((left) => {
          if (Date.now() - last < 500) return;
          last = Date.now();
          process.stderr.write(`detach: ${total - left} of ${total} dirty blocks written back\n`);
        });
        await engine.close();
        process.stdout.write(`detached: ${total} dirty blocks (${formatBytes(total * superblock.blockBytes)}) written back; the origin is complete\n`);
      } finally {
        await origin.device.close();
      }
    } finally {
      await cache.device.close();
    }
    return 0;
  },
};
