// The NBD conformance suite (nbd-conformance.md A–G) against the real
// `blockcache serve` in writethrough mode with 64K cache blocks, over file devices,
// with a cache much smaller than the data written so eviction happens.
import { after, before } from 'node:test';
import { defineConformanceSuite } from '../support/conformance.js';
import { createFileCache, serveCache, ServedCache } from '../support/blockcache.js';
import { makeTempDir, TempDir } from '../support/temp-dir.js';

const MiB = 1024 * 1024;
let directory: TempDir;

before(async () => {
  directory = await makeTempDir('blockcache-conformance-');
});
after(async () => {
  await directory.remove();
});

defineConformanceSuite('blockcache writethrough 64K', async () => {
  const { cache } = await createFileCache(directory, { originBytes: 256 * MiB, cacheBytes: 48 * MiB, mode: 'writethrough', blockSize: '64K' });
  const served: ServedCache = await serveCache(cache, directory.path);
  return { uri: served.uri, stop: () => served.stop() };
}, { skipFuse: true });
