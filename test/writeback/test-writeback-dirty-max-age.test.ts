// Fallow cleaning: with the threshold out of the way, blocks dirty longer than
// dirty-max-age are written back once clients are idle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createFileCache, withServeScope } from '../support/blockcache.js';
import { requireTools, runChecked } from '../support/process.js';
import { waitFor } from '../support/wait.js';
import { setSettings, statusOf } from '../support/writeback.js';

const MiB = 1024 * 1024;

test('blocks dirty longer than dirty-max-age are cleaned when clients are idle', async () => {
  await requireTools(['nbdsh']);
  await withServeScope(async ({ directory, serve }) => {
    const { origin, cache } = await createFileCache(directory, { originBytes: 16 * MiB, cacheBytes: 8 * MiB, mode: 'writeback' });
    const served = await serve(cache, ['--set', 'dirty-threshold=100']);
    await runChecked('nbdsh', ['-u', served.uri, '-c', `h.pwrite(b'\\xab' * ${MiB}, ${4 * MiB}); h.flush()`]);
    assert.equal((await statusOf(served.control)).dirtyBlocks, MiB / 4096, 'held dirty under a 100% threshold');
    assert.equal((await setSettings(served.control, 'dirty-max-age=1s'))['dirty-max-age'], '1s');
    await waitFor('aged dirty blocks to be written back', async () => (await statusOf(served.control)).dirtyBlocks === 0, 15_000);
    const onOrigin = Buffer.alloc(MiB);
    const fd = fs.openSync(origin, 'r');
    fs.readSync(fd, onOrigin, 0, MiB, 4 * MiB);
    fs.closeSync(fd);
    assert.ok(onOrigin.every((byte) => byte === 0xab), 'the origin holds the aged data');
    await served.stop();
  });
});
