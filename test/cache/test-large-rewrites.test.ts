// Large writes over data the cache already holds, through real clients: the
// data is read first (cached clean), then rewritten with 1 MiB requests
// (nbdcopy), which takes the run-of-hits path on the SSD tier or, in writeback,
// completes in RAM when the RAM tier holds every block. The export reads the new
// bytes. In writeback every rewritten block is dirty and the origin has the
// bytes after detach; in writethrough nothing is dirty, the origin has them at
// once, and the cached copies serve them (no write missed the cache).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { blockcacheChecked, createFileCache, withServeScope } from '../support/blockcache.js';
import { runChecked, requireTools } from '../support/process.js';

const MiB = 1024 * 1024;
const ORIGIN_BYTES = 16 * MiB;
const CACHE_BYTES = 40 * MiB;

for (const [mode, ramCache] of [['writeback', '0'], ['writeback', '64M'], ['writethrough', '0'], ['writethrough', '64M']] as const) {
  const outcome = mode === 'writeback' ? 'stay dirty and reach the origin on detach' : 'reach the origin at once and stay cached clean';
  test(`${mode}, RAM tier ${ramCache}: 1 MiB rewrites of cached data read back, ${outcome}`, async () => {
    await requireTools(['qemu-img', 'nbdcopy']);
    await withServeScope(async ({ directory, serve }) => {
      const { origin, cache } = await createFileCache(directory, {
        originBytes: ORIGIN_BYTES, cacheBytes: CACHE_BYTES, mode, blockSize: '4K',
        originContent: (fd) => { fs.writeSync(fd, randomBytes(ORIGIN_BYTES), 0, ORIGIN_BYTES, 0); },
      });
      // Background writeback paused: every rewritten block must be dirty afterwards.
      const served = await serve(cache, ['--ram-cache', ramCache, '--set', 'dirty-threshold=100', '--set', 'dirty-max-age=off']);
      // Two reads: the first caches the data clean on the SSD tier, the second brings it into RAM.
      for (let pass = 0; pass < 2; pass++) {
        await runChecked('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', origin, served.uri], { timeoutMs: 120_000 });
      }
      const warmed = JSON.parse((await blockcacheChecked(['status', '--control', served.control, '--json'])).stdout);
      const next = directory.file('next.img');
      fs.writeFileSync(next, randomBytes(ORIGIN_BYTES));
      await runChecked('nbdcopy', ['--request-size=1048576', '--flush', next, served.uri], { timeoutMs: 120_000 });
      await runChecked('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', next, served.uri], { timeoutMs: 120_000 });
      const status = JSON.parse((await blockcacheChecked(['status', '--control', served.control, '--json'])).stdout);
      assert.equal(status.writeMisses, 0, 'every write found its blocks cached');
      if (mode === 'writeback') {
        assert.equal(status.dirtyBlocks, ORIGIN_BYTES / 4096, 'every rewritten block is dirty on the SSD tier (nbdcopy --flush pushed RAM pages down)');
        await served.stop();
        assert.ok(!fs.readFileSync(origin).equals(fs.readFileSync(next)), 'the origin is not written before detach');
        await blockcacheChecked(['detach', '--cache', cache]);
        assert.ok(fs.readFileSync(origin).equals(fs.readFileSync(next)), 'the origin has the rewrite after detach');
        return;
      }
      assert.equal(status.dirtyBlocks, 0, 'writethrough leaves nothing dirty');
      assert.ok(fs.readFileSync(origin).equals(fs.readFileSync(next)), 'the origin has the rewrite while the server runs');
      assert.equal(status.readMisses, warmed.readMisses, 'the rewritten data was read back from the cache, not the origin');
      await served.stop();
    });
  });
}
