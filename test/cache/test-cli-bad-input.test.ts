// Bad input to the CLI: one-line errors, non-zero exits, nothing destroyed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { blockcache, blockcacheChecked, createFileCache, serveCache } from '../support/blockcache.js';
import { makeTempDir, TempDir } from '../support/temp-dir.js';
import { runChecked } from '../support/process.js';

const MiB = 1024 * 1024;

function assertOneLineError(result: { code: number | null; stderr: string }, pattern: RegExp, code = 1): void {
  assert.equal(result.code, code, `exit code (stderr: ${result.stderr})`);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0]!, /^blockcache: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
}

async function withDir(body: (directory: TempDir) => Promise<void>): Promise<void> {
  const directory = await makeTempDir();
  try { await body(directory); } finally { await directory.remove(); }
}

test('unknown commands and options, missing and invalid arguments get usage errors', async () => {
  assertOneLineError(await blockcache(['frobnicate']), /unknown command 'frobnicate'/, 2);
  assertOneLineError(await blockcache(['create', '--bogus']), /bogus/, 2);
  assertOneLineError(await blockcache(['create', '--origin', 'x']), /missing required option --cache/, 2);
  assertOneLineError(await blockcache(['serve']), /missing required option --cache/, 2);
  assertOneLineError(await blockcache(['create', '--cache', 'a', '--origin', 'b', '--block-size', 'lots']), /not a size/, 2);
  assertOneLineError(await blockcache(['create', '--cache', 'a', '--origin', 'b', '--assoc', '3']), /power of two/, 2);
  assertOneLineError(await blockcache(['create', '--cache', 'a', '--origin', 'b', '--mode', 'fast']), /--mode must be one of/, 2);
  assertOneLineError(await blockcache(['create', '--cache', 'a', '--origin', 'b', '--policy', 'magic']), /--policy must be one of/, 2);
  assertOneLineError(await blockcache(['status']), /exactly one of --control PATH or --cache DEV/, 2);
  assertOneLineError(await blockcache(['serve', '--cache', 'x', '--listen', 'host:99999']), /--listen/, 2);
  assertOneLineError(await blockcache(['serve', '--cache', 'x', '--ram-cache', 'lots']), /--ram-cache: 'lots' is not a size/, 2);
  assertOneLineError(await blockcache(['serve', '--cache', 'x', '--ram-cache', '100G']), /--ram-cache: 100G is larger than the limit/, 2);
  for (const command of ['create', 'serve', 'status', 'flush', 'detach', 'check', 'sim']) {
    const help = await blockcache([command, '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, new RegExp(`^usage: blockcache ${command}`));
  }
});

test('create refuses invalid sizes and missing devices, and touches nothing', async () => {
  await withDir(async (directory) => {
    const origin = directory.file('origin.img');
    const cache = directory.file('cache.img');
    fs.writeFileSync(origin, Buffer.alloc(4 * MiB, 7));
    fs.writeFileSync(cache, Buffer.alloc(MiB, 9));
    assertOneLineError(await blockcache(['create', '--cache', cache, '--origin', origin, '--block-size', '3K']), /power of two from 4K to 1M/);
    assertOneLineError(await blockcache(['create', '--cache', cache, '--origin', origin, '--block-size', '2M']), /power of two from 4K to 1M/);
    assertOneLineError(await blockcache(['create', '--cache', cache, '--origin', origin, '--block-size', '1M']), /too small/);
    assertOneLineError(await blockcache(['create', '--cache', directory.file('missing.img'), '--origin', origin]), /no such file/);
    assertOneLineError(await blockcache(['create', '--cache', cache, '--origin', 'nbd+unix:///?socket=/nonexistent/sock']), /nonexistent|connect|ENOENT/i);
    assert.ok(fs.readFileSync(cache).equals(Buffer.alloc(MiB, 9)), 'the cache device is untouched');
    assert.ok(fs.readFileSync(origin).equals(Buffer.alloc(4 * MiB, 7)), 'the origin is untouched');
  });
});

test('create over an existing cache is refused; --force refuses dirty data unless --discard-dirty', async () => {
  await withDir(async (directory) => {
    const { origin, cache } = await createFileCache(directory, { originBytes: 16 * MiB, cacheBytes: 4 * MiB, mode: 'writeback' });
    assertOneLineError(await blockcache(['create', '--cache', cache, '--origin', origin]), /already holds a blockcache cache/);
    // Make dirty blocks, stop cleanly.
    const served = await serveCache(cache, directory.path);
    await runChecked('nbdsh', ['-u', served.uri, '-c', 'h.pwrite(b"D" * 65536, 4096); h.flush()']);
    await served.stop();
    const before = fs.readFileSync(cache);
    assertOneLineError(await blockcache(['create', '--cache', cache, '--origin', origin, '--force']), /dirty blocks/);
    assert.ok(fs.readFileSync(cache).equals(before), 'refused create leaves the cache byte for byte');
    assertOneLineError(await blockcache(['create', '--cache', cache, '--origin', origin, '--discard-dirty']), /--discard-dirty needs --force/, 2);
    await blockcacheChecked(['create', '--cache', cache, '--origin', origin, '--force', '--discard-dirty']);
    const status = JSON.parse((await blockcacheChecked(['status', '--cache', cache, '--json'])).stdout);
    assert.equal(status.dirtyBlocks, 0);
    // A clean cache can be re-created with --force alone.
    await blockcacheChecked(['create', '--cache', cache, '--origin', origin, '--force']);
  });
});

test('serve refuses a device that is not a cache, a damaged cache, and an origin of the wrong size', async () => {
  await withDir(async (directory) => {
    const plain = directory.file('plain.img');
    fs.writeFileSync(plain, Buffer.alloc(2 * MiB, 1));
    assertOneLineError(await blockcache(['serve', '--cache', plain]), /no blockcache superblock/);
    assertOneLineError(await blockcache(['check', '--cache', plain]), /no blockcache superblock/);
    assert.ok(fs.readFileSync(plain).equals(Buffer.alloc(2 * MiB, 1)));
    const { origin, cache } = await createFileCache(directory, { originBytes: 16 * MiB, cacheBytes: 4 * MiB, mode: 'writethrough' });
    // Origin of the wrong size.
    fs.truncateSync(origin, 8 * MiB);
    assertOneLineError(await blockcache(['serve', '--cache', cache]), /has 8388608 bytes but the cache was created for 16777216/);
    fs.truncateSync(origin, 16 * MiB);
    // Both superblock copies damaged: refused as corrupt; one copy damaged: served from the other.
    const fd = fs.openSync(cache, 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 100);
    fs.closeSync(fd);
    const oneDamaged = await blockcache(['check', '--cache', cache]);
    assert.equal(oneDamaged.code, 1, 'check reports the damaged copy');
    const fd2 = fs.openSync(cache, 'r+');
    fs.writeSync(fd2, Buffer.from([0xff]), 0, 1, 4096 + 100);
    fs.closeSync(fd2);
    assertOneLineError(await blockcache(['serve', '--cache', cache]), /fails its checksum/);
  });
});

test('a cache written by a newer blockcache is refused with a clear error', async () => {
  await withDir(async (directory) => {
    const { cache } = await createFileCache(directory, { originBytes: 16 * MiB, cacheBytes: 4 * MiB, mode: 'writethrough' });
    const { crc32c } = await import('../../src/stdx/checksum.js');
    const fd = fs.openSync(cache, 'r+');
    for (const copy of [0, 1]) {
      const block = Buffer.alloc(4096);
      fs.readSync(fd, block, 0, 4096, copy * 4096);
      block.writeUInt32LE(99, 8); // format version
      block.writeUInt32LE(crc32c(block.subarray(0, 4092)), 4092);
      fs.writeSync(fd, block, 0, 4096, copy * 4096);
    }
    fs.closeSync(fd);
    assertOneLineError(await blockcache(['serve', '--cache', cache]), /newer blockcache/);
  });
});
