// Through the real server: with the RAM tier off, cache hits are read from the
// cache device inline on the event loop and read misses are written to it
// inline (`/metrics` counts them), and the data read back is exact. In
// writeback, writes over cached blocks in consecutive slots complete inline too
// (the engine's writeSsdHitNow): they read back, stay dirty and reach the origin
// on detach.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { blockcacheChecked, createFileCache, withServeScope } from '../support/blockcache.js';
import { requireTools, runChecked } from '../support/process.js';
import { controlRequest } from '../../src/control/control-server.js';

const MiB = 1024 * 1024;

function counter(text: string, op: string, path: string): number {
  const match = new RegExp(`^blockcache_cache_small_io_total\\{op="${op}",path="${path}"\\} (\\d+)`, 'm').exec(text);
  assert.ok(match, `metrics have small_io ${op} ${path}`);
  return Number(match[1]);
}

test('serve --ram-cache 0: 4 KiB cache hits are read inline and misses written inline, data exact', async () => {
  await requireTools(['nbdsh']);
  await withServeScope(async ({ directory, serve }) => {
    const { origin, cache } = await createFileCache(directory, { originBytes: 16 * MiB, cacheBytes: 8 * MiB, mode: 'writethrough' });
    // No readahead: each miss fills its own 4 KiB block (a readahead window is one larger write).
    const served = await serve(cache, ['--ram-cache', '0', '--set', 'readahead=off']);
    // 64 scattered 4 KiB reads, twice: misses first (each fills a slot), then hits.
    const script = directory.file('reads.py');
    const out = directory.file('reads.bin');
    fs.writeFileSync(script, [
      `out = open(${JSON.stringify(out)}, 'wb')`,
      'for rnd in range(2):',
      '    for i in range(64):',
      '        data = h.pread(4096, i * 65536)',
      '        if rnd == 1: out.write(data)',
      'out.close()',
    ].join('\n'));
    await runChecked('nbdsh', ['-u', served.uri, '-c', `exec(open(${JSON.stringify(script)}).read())`], { timeoutMs: 60_000 });
    const image = fs.readFileSync(origin);
    const expected = Buffer.concat(Array.from({ length: 64 }, (_, i) => image.subarray(i * 65536, i * 65536 + 4096)));
    assert.ok(fs.readFileSync(out).equals(expected), 'hits read back the origin data');
    const text = (await controlRequest(served.control, 'GET', '/metrics')).body;
    assert.ok(counter(text, 'write', 'inline') >= 64, 'the 64 fills were written inline');
    assert.ok(counter(text, 'read', 'inline') >= 64, 'the 64 hits were read inline');
    await served.stop();
  });
});

test('serve --ram-cache 0, writeback: 4 KiB, partial and multi-block writes over cached blocks read back, stay dirty and reach the origin on detach', async () => {
  await requireTools(['nbdsh']);
  await withServeScope(async ({ directory, serve }) => {
    const { origin, cache } = await createFileCache(directory, {
      originBytes: 16 * MiB, cacheBytes: 8 * MiB, mode: 'writeback', blockSize: '4K',
      originContent: (fd) => { fs.writeSync(fd, randomBytes(16 * MiB), 0, 16 * MiB, 0); },
    });
    // Background writeback paused: every rewritten block must still be dirty at the end.
    const served = await serve(cache, ['--ram-cache', '0', '--set', 'readahead=off', '--set', 'dirty-threshold=100', '--set', 'dirty-max-age=off']);
    // 64 scattered blocks read (cached clean), then rewritten: whole blocks for even i,
    // 1000 bytes at 512 for odd i (an inline write within a block); and 12 KiB across four blocks
    // a cold run put in consecutive slots (one inline write); then flushed and read back.
    const script = directory.file('rewrites.py');
    const out = directory.file('rewrites.bin');
    fs.writeFileSync(script, [
      'for i in range(64): h.pread(4096, i * 65536 + 32768)',
      'for i in range(64):',
      '    if i % 2 == 0: h.pwrite(bytes([(i * 7 + j) & 255 for j in range(4096)]), i * 65536 + 32768)',
      '    else: h.pwrite(bytes([(i * 11 + j) & 255 for j in range(1000)]), i * 65536 + 32768 + 512)',
      // 64 KiB read as one cold run (consecutive slots), then 12 KiB written across 4 of its blocks.
      'h.pread(65536, 0)',
      'h.pwrite(bytes([(j * 13) & 255 for j in range(12288)]), 4096 + 2048)',
      'h.flush()',
      `out = open(${JSON.stringify(out)}, 'wb')`,
      'for i in range(64): out.write(h.pread(4096, i * 65536 + 32768))',
      'out.write(h.pread(65536, 0))',
      'out.close()',
    ].join('\n'));
    const expected = fs.readFileSync(origin);
    for (let i = 0; i < 64; i++) {
      const at = i * 65536 + 32768;
      if (i % 2 === 0) for (let j = 0; j < 4096; j++) expected[at + j] = (i * 7 + j) & 255;
      else for (let j = 0; j < 1000; j++) expected[at + 512 + j] = (i * 11 + j) & 255;
    }
    for (let j = 0; j < 12288; j++) expected[4096 + 2048 + j] = (j * 13) & 255;
    await runChecked('nbdsh', ['-u', served.uri, '-c', `exec(open(${JSON.stringify(script)}).read())`], { timeoutMs: 60_000 });
    const readBack = Buffer.concat([
      ...Array.from({ length: 64 }, (_, i) => expected.subarray(i * 65536 + 32768, i * 65536 + 32768 + 4096)), expected.subarray(0, 65536)]);
    assert.ok(fs.readFileSync(out).equals(readBack), 'the rewritten blocks read back');
    const status = JSON.parse((await blockcacheChecked(['status', '--control', served.control, '--json'])).stdout);
    assert.equal(status.dirtyBlocks, 64 + 4, 'every rewritten block is dirty');
    assert.equal(status.writeMisses, 0, 'every write found its block cached');
    await served.stop();
    await blockcacheChecked(['detach', '--cache', cache]);
    assert.ok(fs.readFileSync(origin).equals(expected), 'the origin has the rewrites after detach');
  });
});
