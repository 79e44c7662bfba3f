// Sequential bypass: with sequential-cutoff set, a long sequential write goes
// around the cache and a long sequential read of uncached data does not fill
// it; a stream over blocks that are cached (dirty ones included) keeps data
// exact, and the origin is exact after flush.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createFileCache, withServeScope } from '../support/blockcache.js';
import { requireTools, runChecked } from '../support/process.js';
import { blockcacheChecked, setSettings, statusOf } from '../support/writeback.js';

const MiB = 1024 * 1024;

/** nbdsh script: sequential 64 KiB writes of [start, start+length) in order, mirrored into `expected`. */
function sequentialWrite(expected: string, start: number, length: number, fill: number): string {
  return [
    `f = open(${JSON.stringify(expected)}, 'r+b')`,
    `data = bytes([${fill}]) * 65536`,
    `for offset in range(${start}, ${start + length}, 65536):`,
    '    h.pwrite(data, offset)',
    '    f.seek(offset); f.write(data)',
    'f.close()',
    'h.flush()',
  ].join('\n');
}

test('sequential streams bypass the cache; cached and dirty blocks stay exact', async () => {
  await requireTools(['nbdsh', 'qemu-img']);
  await withServeScope(async ({ directory, serve }) => {
    const { origin, cache } = await createFileCache(directory, { originBytes: 64 * MiB, cacheBytes: 16 * MiB, mode: 'writeback', assoc: 'full' });
    const expected = directory.file('expected.img');
    fs.copyFileSync(origin, expected);
    const served = await serve(cache, ['--set', 'dirty-threshold=100']);
    const run = async (script: string) => {
      const file = directory.file(`script-${Math.random().toString(36).slice(2)}.py`);
      fs.writeFileSync(file, script);
      await runChecked('nbdsh', ['-u', served.uri, '-c', `exec(open(${JSON.stringify(file)}).read())`], { timeoutMs: 60_000 });
    };
    // Dirty and clean cached blocks inside the region the stream will cover (before bypass is on).
    await run(sequentialWrite(expected, 20 * MiB, 256 * 1024, 0x11));
    await run(`h.pread(${256 * 1024}, ${22 * MiB})`);
    const before = await statusOf(served.control);
    assert.equal(before.dirtyBlocks, 64);

    assert.equal((await setSettings(served.control, 'sequential-cutoff=1M'))['sequential-cutoff'], '1M');
    await run(sequentialWrite(expected, 16 * MiB, 16 * MiB, 0x22));
    const afterWrite = await statusOf(served.control);
    assert.ok(afterWrite.sequentialBypassWrites >= (14 * MiB) / 4096, `the stream went around the cache (${afterWrite.sequentialBypassWrites} blocks)`);
    assert.ok(afterWrite.validBlocks - before.validBlocks <= MiB / 4096, `at most the first 1 MiB was cached (${afterWrite.validBlocks - before.validBlocks} new blocks)`);
    // The dirty blocks the stream overwrote were updated in the cache, never left stale.
    // (Only the stream's first MiB, before the cutoff, adds dirty blocks.)
    assert.ok(afterWrite.dirtyBlocks >= before.dirtyBlocks && afterWrite.dirtyBlocks <= before.dirtyBlocks + MiB / 4096, `dirty ${afterWrite.dirtyBlocks}`);

    await run(`for offset in range(${40 * MiB}, ${56 * MiB}, 131072): h.pread(131072, offset)`);
    const afterRead = await statusOf(served.control);
    assert.ok(afterRead.sequentialBypassReads >= (14 * MiB) / 4096, 'the read stream bypassed the cache');
    assert.ok(afterRead.validBlocks - afterWrite.validBlocks <= MiB / 4096, 'a bypassed read stream does not fill the cache');

    await runChecked('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', expected, served.uri], { timeoutMs: 60_000 });
    await blockcacheChecked(['flush', '--control', served.control]);
    assert.ok(fs.readFileSync(origin).equals(fs.readFileSync(expected)), 'the origin is exact after flush');
    await served.stop();
  });
});
