// Through the real server: with the RAM tier off, cache hits are read from the
// cache device inline on the event loop and read misses are written to it
// inline (`/metrics` counts them), and the data read back is exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createFileCache, withServeScope } from '../support/blockcache.js';
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
