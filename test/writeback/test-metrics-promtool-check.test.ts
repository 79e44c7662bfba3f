// GET /metrics is Prometheus text that `promtool check metrics` accepts, with
// blockcache_ counters, gauges and latency histograms for client requests,
// cache-device and origin I/O, and the cache device's inline-I/O counters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFileCache, withServeScope } from '../support/blockcache.js';
import { requireTools, runChecked, runCommand, describeResult } from '../support/process.js';
import { controlRequest } from '../../src/control/control-server.js';

const MiB = 1024 * 1024;

test('/metrics passes promtool check metrics and has the histograms', async () => {
  await requireTools(['promtool', 'nbdsh']);
  await withServeScope(async ({ directory, serve }) => {
    const { cache } = await createFileCache(directory, { originBytes: 16 * MiB, cacheBytes: 8 * MiB, mode: 'writeback' });
    const served = await serve(cache);
    await runChecked('nbdsh', ['-u', served.uri, '-c', `h.pwrite(b'x' * 65536, 0); h.pread(65536, ${MiB}); h.pread(65536, 0); h.flush()`]);
    const response = await controlRequest(served.control, 'GET', '/metrics');
    assert.equal(response.status, 200);
    const text = response.body;
    for (const name of [
      'blockcache_request_duration_seconds_bucket{le="0.001",op="read"}', 'blockcache_request_duration_seconds_count{op="write"}',
      'blockcache_cache_device_io_duration_seconds_bucket', 'blockcache_origin_io_duration_seconds_bucket',
      '# TYPE blockcache_requests_total counter', 'blockcache_dirty_blocks ', 'blockcache_block_lookups_total{op="read",result="hit"}',
      'blockcache_writeback_rate_bytes_per_second', 'blockcache_info{mode="writeback"',
      'blockcache_ram_bytes 67108864', 'blockcache_ram_dirty_bytes ', 'blockcache_ram_write_absorbs_total ', 'blockcache_ram_zero_copy_reads_total ',
    ]) assert.ok(text.includes(name), `metrics include ${name}`);
    // The RAM tier answered the second read of block 0 (its write and the read at 1 MiB filled it).
    assert.match(text, /^blockcache_read_hits_by_tier_total\{tier="ram"\} [1-9]/m);
    assert.match(text, /^blockcache_read_hits_by_tier_total\{tier="ssd"\} \d/m);
    // The read misses filled the cache device with 4 KiB writes, made on the event loop.
    assert.match(text, /^blockcache_cache_small_io_total\{op="write",path="inline"\} [1-9]/m);
    assert.match(text, /^blockcache_cache_small_io_total\{op="read",path="deferred"\} \d/m);
    assert.match(text, /^blockcache_cache_inline_slow_io_total\{op="read"\} \d/m);
    assert.match(text, /^blockcache_metadata_memory_bytes [1-9]/m);
    assert.match(text, /^blockcache_metadata_records_deferred_total 0$/m);
    assert.ok(text.split('\n').every((line) => line === '' || line.startsWith('#') || line.startsWith('blockcache_')), 'every metric is blockcache_');
    const check = await runCommand('promtool', ['check', 'metrics'], { input: text, timeoutMs: 30_000 });
    assert.equal(check.code, 0, describeResult('promtool check metrics', check));
    await served.stop();
  });
});
