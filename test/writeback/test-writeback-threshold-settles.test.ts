// Under a burst of random writes the dirty share settles at dirty-threshold;
// lowering the threshold at runtime takes effect; data stays exact and the
// origin is exact after flush.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createFileCache, withServeScope } from '../support/blockcache.js';
import { requireTools, runChecked } from '../support/process.js';
import { waitFor } from '../support/wait.js';
import { blockcacheChecked, setSettings, statusOf } from '../support/writeback.js';

const MiB = 1024 * 1024;

/** Random 4 KiB writes within the first `regionBytes`, mirrored into `expected`. */
function randomWriteScript(expected: string, regionBytes: number, count: number): string {
  return [
    'import random, os',
    `f = open(${JSON.stringify(expected)}, 'r+b')`,
    'rng = random.Random(7)',
    `for i in range(${count}):`,
    `    offset = rng.randrange(${regionBytes / 4096}) * 4096`,
    '    data = os.urandom(4096)',
    '    h.pwrite(data, offset)',
    '    f.seek(offset); f.write(data)',
    'f.close()',
    'h.flush()',
  ].join('\n');
}

async function settle(control: string, lowBlocks: number, highBlocks: number): Promise<number> {
  let dirty = -1;
  await waitFor(`dirty blocks to settle within [${lowBlocks}, ${highBlocks}]`, async () => {
    dirty = (await statusOf(control)).dirtyBlocks!;
    return dirty >= lowBlocks && dirty <= highBlocks;
  }, 20_000);
  return dirty;
}

test('dirty share settles at the threshold under a write burst, and follows a lowered threshold', async () => {
  await requireTools(['nbdsh', 'qemu-img']);
  await withServeScope(async ({ directory, serve }) => {
    const { origin, cache } = await createFileCache(directory, { originBytes: 64 * MiB, cacheBytes: 16 * MiB, mode: 'writeback', assoc: 'full' });
    const expected = directory.file('expected.img');
    fs.copyFileSync(origin, expected);
    const served = await serve(cache, ['--set', 'dirty-threshold=20']);
    const cacheBlocks = (await statusOf(served.control)).cacheBlocks!;
    const script = directory.file('burst.py');
    fs.writeFileSync(script, randomWriteScript(expected, 12 * MiB, 4000));
    await runChecked('nbdsh', ['-u', served.uri, '-c', `exec(open(${JSON.stringify(script)}).read())`], { timeoutMs: 60_000 });
    // Cleaning stops 1 point below the threshold (hysteresis); allow one more point of slack.
    const atTwenty = await settle(served.control, Math.floor(cacheBlocks * 0.18), Math.floor(cacheBlocks * 0.20));
    assert.ok(atTwenty > 0);

    assert.equal((await setSettings(served.control, 'dirty-threshold=5'))['dirty-threshold'], '5');
    await settle(served.control, Math.floor(cacheBlocks * 0.03), Math.floor(cacheBlocks * 0.05));

    await runChecked('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', expected, served.uri], { timeoutMs: 60_000 });
    await blockcacheChecked(['flush', '--control', served.control]);
    assert.equal((await statusOf(served.control)).dirtyBlocks, 0);
    assert.ok(fs.readFileSync(origin).equals(fs.readFileSync(expected)), 'the origin is exact after flush');
    await served.stop();
  });
});
