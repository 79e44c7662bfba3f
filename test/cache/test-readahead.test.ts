// Readahead through the real server and a real client: a 4 KiB read miss on an
// empty cache also caches the cold blocks of its 128 KiB window (the default),
// which later reads hit; status (JSON and human) and /metrics report it;
// readahead=off fetches nothing more; a bad value is refused and changes
// nothing; the data stays exact (qemu-img compare).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createFileCache, withServeScope } from '../support/blockcache.js';
import { requireTools, runChecked } from '../support/process.js';
import { blockcache, blockcacheChecked, setSettings, statusOf } from '../support/writeback.js';
import { controlRequest } from '../../src/control/control-server.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 4 * KiB;
const WINDOW_BLOCKS = (128 * KiB) / BLOCK;

test('readahead: a read miss caches its cold 128 KiB window; off fetches nothing more; bad values are refused', async () => {
  await requireTools(['nbdsh', 'qemu-img']);
  await withServeScope(async ({ directory, serve }) => {
    const { origin, cache } = await createFileCache(directory, {
      originBytes: 16 * MiB, cacheBytes: 16 * MiB, mode: 'writeback',
      originContent: (fd) => { for (let at = 0; at < 16 * MiB; at += MiB) fs.writeSync(fd, randomBytes(MiB), 0, MiB, at); },
    });
    const served = await serve(cache, ['--ram-cache', '0']);
    const read = (length: number, offset: number) => runChecked('nbdsh', ['-u', served.uri, '-c', `h.pread(${length}, ${offset})`], { timeoutMs: 60_000 });

    await read(BLOCK, MiB + 5 * BLOCK);
    const first = await statusOf(served.control);
    assert.equal(first.readMisses, 1);
    assert.equal(first.readaheadBytes, 128 * KiB);
    assert.equal(first.readaheadBlocks, WINDOW_BLOCKS - 1);
    assert.equal(first.validBlocks, WINDOW_BLOCKS);
    const human = (await blockcacheChecked(['status', '--control', served.control])).stdout;
    assert.match(human, new RegExp(`readahead\\s+128\\.0 KiB window: ${WINDOW_BLOCKS - 1} blocks fetched next to misses`));
    const metrics = (await controlRequest(served.control, 'GET', '/metrics')).body;
    assert.match(metrics, new RegExp(`^blockcache_readahead_blocks_total ${WINDOW_BLOCKS - 1}$`, 'm'));
    assert.match(metrics, /^blockcache_readahead_bytes 131072$/m);

    // The whole window is now served by the cache.
    await read(128 * KiB, MiB);
    const second = await statusOf(served.control);
    assert.equal(second.readMisses, 1);
    assert.equal(second.readHits - first.readHits, WINDOW_BLOCKS);

    // Off: a miss caches its own block only.
    assert.equal((await setSettings(served.control, 'readahead=off')).readahead, '0');
    await read(BLOCK, 3 * MiB);
    const third = await statusOf(served.control);
    assert.equal(third.validBlocks, WINDOW_BLOCKS + 1);
    assert.equal(third.readaheadBlocks, WINDOW_BLOCKS - 1);

    // A bad value is refused, with a message naming what is valid, and changes nothing.
    const bad = await blockcache(['set', '--control', served.control, 'readahead=3K']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /readahead.*8K/);
    assert.equal((await setSettings(served.control)).readahead, '0');

    await runChecked('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', origin, served.uri], { timeoutMs: 60_000 });
  });
});
