// Device errors injected with nbdkit's error filter (CONTRACT.md rule 7):
// cache-device read errors serve clean data from the origin, dirty data that
// cannot be read is EIO (never stale), a burst of errors moves the cache to
// `degraded` (status says so; clean data passes through); cache write errors in
// writethrough lose nothing; origin errors reach the client as EIO and leave
// the cache state intact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { blockcacheChecked, serveCache, ServedCache } from '../support/blockcache.js';
import { BackgroundProcess, runCommand, spawnBackground, requireTools } from '../support/process.js';
import { makeTempDir, TempDir } from '../support/temp-dir.js';
import { waitForSocket } from '../support/wait.js';

const MiB = 1024 * 1024;

/** `file` served by nbdkit behind the error filter; errors only while the trigger files exist. */
async function faultyDisk(directory: TempDir, name: string): Promise<{ uri: string; process: BackgroundProcess; readTrigger: string; writeTrigger: string }> {
  const file = directory.file(`${name}.img`);
  const socket = directory.file(`${name}.sock`);
  const readTrigger = directory.file(`${name}.read-errors`);
  const writeTrigger = directory.file(`${name}.write-errors`);
  const process = spawnBackground('nbdkit', ['-f', '-U', socket, '--filter=error', 'file', file,
    'error-pread=EIO', 'error-pread-rate=100%', `error-pread-file=${readTrigger}`,
    'error-pwrite=EIO', 'error-pwrite-rate=100%', `error-pwrite-file=${writeTrigger}`]);
  await waitForSocket(socket, 20_000);
  return { uri: `nbd+unix:///?socket=${socket}`, process, readTrigger, writeTrigger };
}

function makeFile(path: string, bytes: number): void {
  fs.closeSync(fs.openSync(path, 'w'));
  fs.truncateSync(path, bytes);
}

async function nbdsh(uri: string, script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCommand('nbdsh', ['-u', uri, '-c', script], { timeoutMs: 60_000 });
}

async function status(served: ServedCache): Promise<Record<string, unknown>> {
  return JSON.parse((await blockcacheChecked(['status', '--control', served.control, '--json'])).stdout);
}

interface Rig {
  /** The file behind the healthy device, and the faulty device (an nbdkit error-filter export). */
  readonly healthyFile: string;
  readonly faulty: Awaited<ReturnType<typeof faultyDisk>>;
  served: ServedCache | undefined;
}

/** A cache whose `faultyRole` device sits behind nbdkit's error filter, served; cleaned up after `body`. */
async function withRig(faultyRole: 'cache' | 'origin', mode: string, body: (rig: Rig) => Promise<void>): Promise<void> {
  await requireTools(['nbdkit', 'nbdsh']);
  const directory = await makeTempDir();
  makeFile(directory.file('cache.img'), 8 * MiB);
  makeFile(directory.file('origin.img'), 32 * MiB);
  const faulty = await faultyDisk(directory, faultyRole);
  const healthyFile = directory.file(faultyRole === 'cache' ? 'origin.img' : 'cache.img');
  const rig: Rig = { healthyFile, faulty, served: undefined };
  try {
    const [cache, origin] = faultyRole === 'cache' ? [faulty.uri, healthyFile] : [healthyFile, faulty.uri];
    await blockcacheChecked(['create', '--cache', cache, '--origin', origin, '--mode', mode, '--assoc', '64']);
    // RAM tier off: it would answer reads of these blocks from memory, and these tests are about the devices.
    rig.served = await serveCache(cache, directory.path, ['--ram-cache', '0']);
    await body(rig);
  } finally {
    if (rig.served) await rig.served.process.kill('SIGKILL');
    await faulty.process.stop();
    await directory.remove();
  }
}

/** Stops the rig's server cleanly (so the test can inspect its devices). */
async function stopServer(rig: Rig): Promise<void> {
  await rig.served!.stop();
  rig.served = undefined;
}

test('cache-device read errors: clean data from the origin, dirty data EIO, degraded, then recovery of the dirty data', async () => {
  await withRig('cache', 'writeback', async (rig) => {
    const served = rig.served!;
    const cache = rig.faulty;
    // B: clean in the cache (written back); A: dirty.
    assert.equal((await nbdsh(served.uri, `h.pwrite(b"B" * ${MiB}, ${4 * MiB}); h.flush()`)).code, 0);
    await blockcacheChecked(['flush', '--control', served.control]);
    assert.equal((await nbdsh(served.uri, `h.pwrite(b"A" * 65536, 0); h.flush()`)).code, 0);
    fs.writeFileSync(cache.readTrigger, '');
    const clean = await nbdsh(served.uri, `assert h.pread(${MiB}, ${4 * MiB}) == b"B" * ${MiB}`);
    assert.equal(clean.code, 0, `clean data is served from the origin despite cache read errors: ${clean.stderr}`);
    const dirty = await nbdsh(served.uri, 'h.pread(4096, 0)');
    assert.notEqual(dirty.code, 0, 'an unreadable dirty block is an error, never stale data');
    assert.match(dirty.stderr, /EIO|Input\/output error/);
    const degraded = await status(served);
    assert.equal(degraded.state, 'degraded');
    assert.ok((degraded.cacheErrors as number) > 8);
    // Degraded: new writes go to the origin; clean data passes through.
    assert.equal((await nbdsh(served.uri, `h.pwrite(b"D" * 65536, ${8 * MiB}); assert h.pread(65536, ${8 * MiB}) == b"D" * 65536; h.flush()`)).code, 0);
    // The metadata pages of the dropped clean copies could not be read: their records wait (deferred), and FLUSH still succeeded.
    const deferred = await status(served);
    assert.ok((deferred.recordsDeferred as number) > 0, `records deferred: ${String(deferred.recordsDeferred)}`);
    fs.rmSync(cache.readTrigger);
    const recovered = await nbdsh(served.uri, 'assert h.pread(65536, 0) == b"A" * 65536');
    assert.equal(recovered.code, 0, `the dirty data survives the errors: ${recovered.stderr}`);
    await blockcacheChecked(['flush', '--control', served.control]);
    await stopServer(rig);
    const content = fs.readFileSync(rig.healthyFile);
    assert.ok(content.subarray(0, 65536).equals(Buffer.alloc(65536, 'A')));
    assert.ok(content.subarray(4 * MiB, 5 * MiB).equals(Buffer.alloc(MiB, 'B')));
    assert.ok(content.subarray(8 * MiB, 8 * MiB + 65536).equals(Buffer.alloc(65536, 'D')));
  });
});

test('writethrough with cache-device write errors keeps serving correct data', async () => {
  await withRig('cache', 'writethrough', async (rig) => {
    const served = rig.served!;
    assert.equal((await nbdsh(served.uri, `h.pwrite(b"1" * ${MiB}, 0); h.pread(${MiB}, 0)`)).code, 0);
    fs.writeFileSync(rig.faulty.writeTrigger, '');
    const result = await nbdsh(served.uri, [
      `h.pwrite(b"2" * ${MiB}, 0)`, `h.pwrite(b"3" * ${MiB}, ${2 * MiB})`, `h.pwrite(b"4" * 1000, 5000)`,
      `expected = bytearray(b"2" * ${MiB}); expected[5000:6000] = b"4" * 1000`,
      `assert h.pread(${MiB}, 0) == bytes(expected)`, `assert h.pread(${MiB}, ${2 * MiB}) == b"3" * ${MiB}`,
    ].join('\n'));
    assert.equal(result.code, 0, `writes succeed and read back exactly: ${result.stderr}`);
    fs.rmSync(rig.faulty.writeTrigger);
    assert.equal((await nbdsh(served.uri, `assert h.pread(${MiB}, ${2 * MiB}) == b"3" * ${MiB}`)).code, 0);
    await stopServer(rig);
    assert.ok(fs.readFileSync(rig.healthyFile).subarray(2 * MiB, 3 * MiB).equals(Buffer.alloc(MiB, '3')), 'the origin has every write');
  });
});

test('origin errors reach the client as EIO and leave the cache intact', async () => {
  await withRig('origin', 'writethrough', async (rig) => {
    const served = rig.served!;
    const origin = rig.faulty;
    assert.equal((await nbdsh(served.uri, `h.pwrite(b"C" * 65536, 0); h.pread(65536, 0); h.flush()`)).code, 0);
    fs.writeFileSync(origin.readTrigger, '');
    fs.writeFileSync(origin.writeTrigger, '');
    const miss = await nbdsh(served.uri, `h.pread(4096, ${16 * MiB})`);
    assert.notEqual(miss.code, 0);
    assert.match(miss.stderr, /EIO|Input\/output error/);
    const write = await nbdsh(served.uri, 'h.pwrite(b"X" * 4096, 0)');
    assert.notEqual(write.code, 0, 'a write the origin refused is an error in writethrough');
    const hit = await nbdsh(served.uri, 'h.pread(4096, 8192)');
    assert.equal(hit.code, 0, 'cached data is still served');
    fs.rmSync(origin.readTrigger);
    fs.rmSync(origin.writeTrigger);
    const after = await nbdsh(served.uri, `assert h.pread(4096, ${16 * MiB}) == bytes(4096); assert h.pread(4096, 8192) == b"C" * 4096; h.pwrite(b"Y" * 4096, 0); assert h.pread(4096, 0) == b"Y" * 4096; h.flush()`);
    assert.equal(after.code, 0, after.stderr);
    const counters = await status(served);
    assert.ok((counters.originErrors as number) >= 2);
    assert.equal(counters.state, 'running', 'origin errors do not degrade the cache');
    await stopServer(rig);
    const checked = JSON.parse((await blockcacheChecked(['check', '--cache', rig.healthyFile, '--json', '--data'])).stdout);
    assert.equal(checked.ok, true);
    assert.equal(checked.dataMismatches, 0);
  });
});
