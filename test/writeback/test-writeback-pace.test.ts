// dirty-pace: while a client keeps sending requests, threshold cleaning writes
// back at the paced rate (reported in status, JSON and human) instead of at full
// speed; once the client stops it cleans down to the threshold; with
// dirty-pace=off it cleans down to the threshold while the client is still busy.
// RAM tier off: its dirty pages are not counted in dirtyBlocks. The data stays exact throughout. No timing bound can fail on a slow machine:
// the paced phase checks what status reports, and every wait is generous.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createFileCache, withServeScope } from '../support/blockcache.js';
import { TempDir } from '../support/temp-dir.js';
import { BackgroundProcess, requireTools, runChecked, spawnBackground } from '../support/process.js';
import { waitFor } from '../support/wait.js';
import { blockcache, blockcacheChecked, setSettings, statusOf } from '../support/writeback.js';
import { controlRequest } from '../../src/control/control-server.js';

const MiB = 1024 * 1024;
/** Half of the 16 MiB cache: above a 10% threshold, under the ceiling (55%). */
const DIRTY_BYTES = 8 * MiB;

/** An nbdsh client that reads block 0 over and over until `stopFile` exists. */
function startBusyReader(directory: TempDir, uri: string, stopFile: string): BackgroundProcess {
  const script = directory.file('busy-reader.py');
  fs.writeFileSync(script, ['import os', `while not os.path.exists(${JSON.stringify(stopFile)}):`, '    h.pread(4096, 0)'].join('\n'));
  return spawnBackground('nbdsh', ['-u', uri, '-c', `exec(open(${JSON.stringify(script)}).read())`]);
}

async function stopReader(reader: BackgroundProcess, stopFile: string): Promise<void> {
  fs.writeFileSync(stopFile, '');
  const code = await reader.exited;
  assert.equal(code, 0, `the busy reader failed: ${reader.output()}`);
  fs.rmSync(stopFile);
}

test('dirty-pace: cleaning is paced while clients are busy, full speed once idle or when off', async () => {
  await requireTools(['nbdsh', 'nbdcopy', 'qemu-img']);
  await withServeScope(async ({ directory, serve }) => {
    let reader: BackgroundProcess | undefined;
    const stopFile = directory.file('stop-reader');
    try {
      const { origin, cache } = await createFileCache(directory, { originBytes: 32 * MiB, cacheBytes: 16 * MiB, mode: 'writeback', assoc: 'full' });
      const expected = directory.file('expected.img');
      fs.copyFileSync(origin, expected);
      const data = randomBytes(DIRTY_BYTES);
      fs.writeFileSync(expected, data, { flag: 'r+' });
      const dataPath = directory.file('data.bin');
      fs.writeFileSync(dataPath, data);
      const served = await serve(cache, ['--ram-cache', '0', '--set', 'dirty-threshold=100', '--set', 'dirty-pace=60s']);
      const control = served.control;
      await runChecked('nbdcopy', [dataPath, served.uri], { timeoutMs: 60_000 });
      const cacheBlocks = (await statusOf(control)).cacheBlocks!;
      const thresholdBlocks = Math.floor(cacheBlocks * 0.1);
      const dirtyBefore = (await statusOf(control)).dirtyBlocks!;
      assert.equal(dirtyBefore, DIRTY_BYTES / 4096);

      // Paced: a busy client, then the threshold drops under the dirty share.
      reader = startBusyReader(directory, served.uri, stopFile);
      await waitFor('the busy reader to send requests', async () => (await statusOf(control)).reads! > 100, 30_000);
      await setSettings(control, 'dirty-threshold=10');
      let paced = 0;
      await waitFor('status to report a paced writeback', async () => {
        paced = (await statusOf(control)).writebackPaceBytesPerSecond!;
        return paced > 0;
      }, 20_000);
      // 1 MiB/s at least (the excess is ~7 MiB over 60 s); full speed would be far above.
      assert.ok(paced >= MiB && paced < 2 * MiB, `paced to ${paced} B/s`);
      const human = (await blockcacheChecked(['status', '--control', control])).stdout;
      assert.match(human, /paced to 1\.00 MiB\/s while clients are busy/);
      const metrics = (await controlRequest(control, 'GET', '/metrics')).body;
      const gauge = /^blockcache_writeback_pace_bytes_per_second (\S+)$/m.exec(metrics);
      assert.ok(gauge && Number(gauge[1]) >= MiB, `/metrics shows the pace: ${gauge?.[1]}`);
      const during = await statusOf(control);
      assert.ok(during.dirtyBlocks! > thresholdBlocks, 'still above the threshold while paced');

      // Idle: the client stops, cleaning goes down to the threshold and pacing ends.
      await stopReader(reader, stopFile);
      reader = undefined;
      await waitFor('dirty blocks to reach the threshold once clients are idle', async () => (await statusOf(control)).dirtyBlocks! <= thresholdBlocks, 60_000);
      await waitFor('pacing to end', async () => (await statusOf(control)).writebackPaceBytesPerSecond === 0, 20_000);

      // A bad pace is refused, and changes nothing.
    const refused = await blockcache(['set', '--control', control, 'dirty-pace=5ms']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /dirty-pace: '5ms' is not valid \(expected 0\/off or a duration from 1s to 1h/);
    assert.equal((await setSettings(control))['dirty-pace'], '1m');

    // Off: dirty again, a busy client, and cleaning reaches the threshold while it is still busy.
      await setSettings(control, 'dirty-threshold=100', 'dirty-pace=off');
      await runChecked('nbdcopy', [dataPath, served.uri], { timeoutMs: 60_000 });
      assert.ok((await statusOf(control)).dirtyBlocks! > 2 * thresholdBlocks);
      reader = startBusyReader(directory, served.uri, stopFile);
      await waitFor('the busy reader to send requests again', async () => (await statusOf(control)).reads! > during.reads! + 100, 30_000);
      await setSettings(control, 'dirty-threshold=10');
      await waitFor('dirty blocks to reach the threshold with pacing off', async () => {
        const status = await statusOf(control);
        assert.equal(status.writebackPaceBytesPerSecond, 0, 'never paced with dirty-pace=off');
        return status.dirtyBlocks! <= thresholdBlocks;
      }, 60_000);
      assert.equal(reader.child.exitCode, null, 'the client was busy all along');
      await stopReader(reader, stopFile);
      reader = undefined;

      await runChecked('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', expected, served.uri], { timeoutMs: 60_000 });
      await served.stop();
    } finally {
      if (reader) fs.writeFileSync(stopFile, '');
      await reader?.kill('SIGKILL');
    }
  });
});
