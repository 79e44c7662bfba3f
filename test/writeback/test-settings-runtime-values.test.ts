// Runtime settings through `blockcache set` and POST /settings: every setting
// rejects bad values with a one-line error and changes nothing; `set` alone
// lists the values; a policy switch keeps every cached block; leaving
// writeback flushes first; policy and mode survive a restart; the commit
// interval set at start (serve --set) and at runtime is the one the server keeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFileCache, withServeScope } from '../support/blockcache.js';
import { requireTools, runChecked } from '../support/process.js';
import { waitFor } from '../support/wait.js';
import { controlRequest } from '../../src/control/control-server.js';
import { blockcache, blockcacheChecked, setSettings, statusOf } from '../support/writeback.js';

const MiB = 1024 * 1024;
/** Longer than the default commit interval (5 s): a fill still uncommitted after this was held by the longer interval set. */
const PAST_DEFAULT_INTERVAL_MS = 7000;

const BAD_VALUES: Record<string, string[]> = {
  'dirty-threshold': ['101', '-1', 'abc', '20.5', ''],
  'dirty-max-age': ['10x', '-5s', '50ms', '8d', 'soon'],
  'writeback-rate': ['fast', '20Q', '1K', 'iops=-1', 'iops=abc', '20M,30M', 'iops=5,iops=6', '2T'],
  'writeback-concurrency': ['0', '257', 'many'],
  'commit-interval': ['0', 'off', '500ms', '11m', 'often'],
  'sequential-cutoff': ['1K', '100G', 'big', '-4K'],
  'ram-cache': ['65G', 'plenty', '-1M', '1.5G'],
  policy: ['nosuch', 'opt', 'LRU'],
  mode: ['writefast', 'WRITEBACK', ''],
};

test('settings: bad values are rejected, values listed, policy and mode switched at runtime', async () => {
  await requireTools(['nbdsh']);
  await withServeScope(async ({ directory, serve }) => {
    const { cache } = await createFileCache(directory, { originBytes: 32 * MiB, cacheBytes: 8 * MiB, mode: 'writeback', policy: 'lru', assoc: 'full' });
    const served = await serve(cache, ['--set', 'commit-interval=10m']);
    const listed = await blockcacheChecked(['set', '--control', served.control]);
    for (const key of Object.keys(BAD_VALUES)) assert.match(listed.stdout, new RegExp(`^${key}=`, 'm'), `set lists ${key}`);
    const initial = await setSettings(served.control);
    assert.equal(initial['commit-interval'], '10m', 'serve --set applied the interval');

    for (const [key, values] of Object.entries(BAD_VALUES)) {
      for (const value of values) {
        const result = await blockcache(['set', '--control', served.control, `${key}=${value}`]);
        assert.notEqual(result.code, 0, `${key}=${value} is rejected`);
        assert.equal(result.stderr.trim().split('\n').length, 1, `one line for ${key}=${value}: ${result.stderr}`);
        assert.ok(result.stderr.includes(key), `the error names ${key}: ${result.stderr}`);
      }
    }
    const unknown = await blockcache(['set', '--control', served.control, 'no-such-key=1']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /unknown setting 'no-such-key'/);
    // One bad value in a request changes nothing, not even the good ones before it.
    const mixed = await blockcache(['set', '--control', served.control, 'dirty-threshold=30', 'mode=nope']);
    assert.notEqual(mixed.code, 0);
    assert.deepEqual(await setSettings(served.control), initial, 'rejected requests changed nothing');
    const badJson = await controlRequest(served.control, 'POST', '/settings', '{"dirty-threshold": [1]}');
    assert.equal(badJson.status, 400);

    // Good values, in the documented forms, through the CLI and as JSON.
    const applied = await setSettings(served.control, 'dirty-threshold=30%', 'dirty-max-age=90s', 'writeback-rate=20MiB/s,iops=500',
      'writeback-concurrency=4', 'sequential-cutoff=4M');
    assert.deepEqual([applied['dirty-threshold'], applied['dirty-max-age'], applied['writeback-rate'], applied['writeback-concurrency'], applied['sequential-cutoff']],
      ['30', '90s', '20M/s,iops=500', '4', '4M']);
    const json = await controlRequest(served.control, 'POST', '/settings', JSON.stringify({ 'writeback-rate': 0, 'sequential-cutoff': 'off' }));
    assert.equal(json.status, 200, json.body);
    assert.equal(JSON.parse(json.body)['writeback-rate'], '0');

    // The interval holds: cache fills wait for it, past the default's 5 s, until a shorter one is set.
    const commitsBefore = (await statusOf(served.control)).commits;
    await runChecked('nbdsh', ['-u', served.uri, '-c', `h.pread(${MiB}, ${20 * MiB})`]);
    await new Promise((resolve) => setTimeout(resolve, PAST_DEFAULT_INTERVAL_MS));
    assert.equal((await statusOf(served.control)).commits, commitsBefore, 'no commit within 10m');
    assert.equal((await setSettings(served.control, 'commit-interval=1s'))['commit-interval'], '1s');
    await waitFor('a commit within the new 1 s interval', async () => (await statusOf(served.control)).commits! > commitsBefore!, 30_000);

    // Resizing the RAM tier pushes its dirty pages down first; the data stays exact.
    await runChecked('nbdsh', ['-u', served.uri, '-c', `h.pwrite(b'r' * 65536, ${6 * MiB})`]);
    assert.ok((await statusOf(served.control)).ramDirtyBlocks! > 0, 'the write completed in RAM');
    assert.equal((await setSettings(served.control, 'ram-cache=2M'))['ram-cache'], '2M');
    const resized = await statusOf(served.control);
    assert.equal(resized.ramDirtyBlocks, 0, 'resizing pushed every dirty RAM page down');
    assert.equal(resized.ramBytes, 2 * MiB);
    assert.ok(resized.dirtyBlocks! >= 16, 'the pushed pages are dirty in the cache');
    await runChecked('nbdsh', ['-u', served.uri, '-c', `assert h.pread(65536, ${6 * MiB}) == b'r' * 65536`]);

    // Cache some blocks, dirty some, then switch the policy: every cached block stays cached.
    await runChecked('nbdsh', ['-u', served.uri, '-c', `h.pread(${2 * MiB}, 0); h.pwrite(b'd' * ${MiB}, ${4 * MiB}); h.flush()`]);
    const before = await statusOf(served.control);
    assert.equal((await setSettings(served.control, 'policy=arc')).policy, 'arc');
    const switched = await statusOf(served.control);
    assert.equal(switched.policy as unknown, 'arc');
    assert.equal(switched.validBlocks, before.validBlocks, 'the policy switch keeps every cached block');
    await runChecked('nbdsh', ['-u', served.uri, '-c', `h.pread(${2 * MiB}, 0)`]);
    assert.equal((await statusOf(served.control)).readMisses, before.readMisses, 'cached blocks still hit after the switch');

    // Leaving writeback writes every dirty block back before the call returns.
    assert.ok(before.dirtyBlocks > 0);
    assert.equal((await setSettings(served.control, 'mode=writethrough')).mode, 'writethrough');
    const through = await statusOf(served.control);
    assert.equal(through.dirtyBlocks, 0, 'no dirty block is left after leaving writeback');
    await served.stop();
    const offline = JSON.parse((await blockcacheChecked(['status', '--cache', cache, '--json'])).stdout);
    assert.equal(offline.mode, 'writethrough', 'the mode is persisted');
    assert.equal(offline.policy, 'arc', 'the policy is persisted');
    assert.equal(offline.dirtyBlocks, 0);
    assert.equal(offline.validBlocks, through.validBlocks, 'the switched cache restarts warm');
  });
});
