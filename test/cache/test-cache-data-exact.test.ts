// Data stays exact through the real server in every mode at 4 KiB and 64 KiB
// blocks: cold reads, a whole-device overwrite of 8x the cache size, unaligned
// writes, a warm restart, and the origin exact after detach (and already exact
// in writethrough / writearound).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { blockcacheChecked, createFileCache, withServeScope } from '../support/blockcache.js';
import { runChecked, requireTools } from '../support/process.js';

const MiB = 1024 * 1024;
const ORIGIN_BYTES = 64 * MiB;
const CACHE_BYTES = 8 * MiB;

function writeRandomRegions(fd: number, count: number, maxBytes: number): void {
  for (let i = 0; i < count; i++) {
    const length = 1 + Math.floor(Math.random() * maxBytes);
    fs.writeSync(fd, randomBytes(length), 0, length, Math.floor(Math.random() * (ORIGIN_BYTES - length)));
  }
}

async function compareExport(uri: string, expected: string): Promise<void> {
  await runChecked('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', expected, uri], { timeoutMs: 120_000 });
}

async function status(control: string): Promise<Record<string, number>> {
  return JSON.parse((await blockcacheChecked(['status', '--control', control, '--json'])).stdout);
}

for (const mode of ['writeback', 'writethrough', 'writearound']) {
  for (const blockSize of ['4K', '64K']) {
    test(`${mode} ${blockSize}: data exact after cold reads, 8x overwrite, unaligned writes, restart and detach`, async () => {
      await requireTools(['qemu-img', 'nbdcopy', 'nbdsh']);
      await withServeScope(async ({ directory, serve }) => {
        const { origin, cache } = await createFileCache(directory, {
          originBytes: ORIGIN_BYTES, cacheBytes: CACHE_BYTES, mode, blockSize, assoc: '64',
          originContent: (fd) => writeRandomRegions(fd, 200, 256 * 1024),
        });
        const expected = directory.file('expected.img');
        fs.copyFileSync(origin, expected);
        let served = await serve(cache);
        // Cold reads (and a second, cached, pass).
        await compareExport(served.uri, expected);
        await compareExport(served.uri, expected);
        // Overwrite the whole device (8x the cache) with new content.
        const next = directory.file('next.img');
        fs.copyFileSync(expected, next);
        const fd = fs.openSync(next, 'r+');
        writeRandomRegions(fd, 400, 512 * 1024);
        fs.closeSync(fd);
        await runChecked('nbdcopy', ['--flush', next, served.uri], { timeoutMs: 120_000 });
        fs.copyFileSync(next, expected);
        await compareExport(served.uri, expected);
        // Unaligned writes of odd sizes through libnbd, mirrored into the expected image.
        const script = directory.file('unaligned.py');
        const patches: string[] = [];
        const expectedFd = fs.openSync(expected, 'r+');
        for (let i = 0; i < 40; i++) {
          const length = 1 + Math.floor(Math.random() * 9000);
          const offset = Math.floor(Math.random() * (ORIGIN_BYTES - length));
          const data = randomBytes(length);
          const file = directory.file(`patch-${i}.bin`);
          fs.writeFileSync(file, data);
          fs.writeSync(expectedFd, data, 0, length, offset);
          patches.push(`h.pwrite(open(${JSON.stringify(file)}, 'rb').read(), ${offset})`);
        }
        fs.closeSync(expectedFd);
        fs.writeFileSync(script, `${patches.join('\n')}\nh.flush()\n`);
        await runChecked('nbdsh', ['-u', served.uri, '-c', `exec(open(${JSON.stringify(script)}).read())`]);
        await compareExport(served.uri, expected);
        // Restart: clean shutdown keeps the cache warm. Read a 1 MiB region twice so it is cached.
        // `blockcache flush` first, so no set is full of dirty blocks and the region can be cached whole.
        await blockcacheChecked(['flush', '--control', served.control]);
        assert.equal((await status(served.control)).dirtyBlocks, 0, 'flush leaves no dirty block');
        const readRegion = `h.pread(${MiB}, ${16 * MiB})`;
        await runChecked('nbdsh', ['-u', served.uri, '-c', readRegion]);
        // The RAM tier goes off (a runtime setting) so the second pass measures the SSD tier.
        await blockcacheChecked(['set', '--control', served.control, 'ram-cache=0']);
        const firstPass = await status(served.control);
        await runChecked('nbdsh', ['-u', served.uri, '-c', readRegion]);
        const before = await status(served.control);
        // Blocks of the region that could not be cached (their set full of dirty blocks) miss every time.
        const uncachable = before.readMisses - firstPass.readMisses;
        await served.stop();
        const offline = JSON.parse((await blockcacheChecked(['status', '--cache', cache, '--json'])).stdout);
        assert.equal(offline.validBlocks, before.validBlocks, 'every cached block survives a clean restart');
        if (mode !== 'writeback') {
          assert.equal(offline.dirtyBlocks, 0);
          assert.ok(fs.readFileSync(origin).equals(fs.readFileSync(expected)), `${mode}: the origin alone is already exact`);
        }
        served = await serve(cache);
        const warm = await status(served.control);
        assert.equal(warm.validBlocks, before.validBlocks, 'the restarted cache is warm');
        await runChecked('nbdsh', ['-u', served.uri, '-c', readRegion]);
        const after = await status(served.control);
        assert.ok(after.readMisses <= uncachable, `a region cached before the restart is read without new misses (${after.readMisses} > ${uncachable})`);
        assert.ok(after.readHits >= MiB / (blockSize === '4K' ? 4096 : 65536), 'reads after a warm restart hit the cache');
        await compareExport(served.uri, expected);
        await served.stop();
        // Detach: the origin alone is complete.
        await blockcacheChecked(['detach', '--cache', cache]);
        assert.ok(fs.readFileSync(origin).equals(fs.readFileSync(expected)), 'the origin is exact after detach');
        const checked = await blockcacheChecked(['check', '--cache', cache, '--json', '--data']);
        const report = JSON.parse(checked.stdout);
        assert.equal(report.ok, true);
        assert.equal(report.dirtyRecords, 0);
        assert.equal(report.dataMismatches, 0);
      });
    });
  }
}
