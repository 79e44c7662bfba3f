// Origin fencing (CONTRACT.md rule 6): an origin modified or replaced while the
// cache was offline is detected at serve; dirty data is not served over it
// without --force; a clean cache over it is invalidated; relocation to an
// identical copy is accepted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { blockcache, blockcacheChecked, createFileCache, serveCache } from '../support/blockcache.js';
import { makeTempDir } from '../support/temp-dir.js';
import { runChecked } from '../support/process.js';

const MiB = 1024 * 1024;

async function readAt(uri: string, offset: number, length: number): Promise<string> {
  const result = await runChecked('nbdsh', ['-u', uri, '-c', `import sys; sys.stdout.write(h.pread(${length}, ${offset}).hex())`]);
  return result.stdout;
}

function overwrite(file: string, offset: number, data: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, data, 0, data.length, offset);
  fs.closeSync(fd);
}

test('dirty cache over an origin modified offline: refused, served only with --force', async () => {
  const directory = await makeTempDir();
  try {
    const { origin, cache } = await createFileCache(directory, { originBytes: 32 * MiB, cacheBytes: 4 * MiB, mode: 'writeback' });
    let served = await serveCache(cache, directory.path);
    await runChecked('nbdsh', ['-u', served.uri, '-c', `h.pwrite(b"\\x42" * 8192, ${MiB}); h.flush()`]);
    await served.stop();
    overwrite(origin, 100, Buffer.from('someone else was here'));
    const refused = await blockcache(['serve', '--cache', cache, '--socket', directory.file('x.sock')], 30_000);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /modified while the cache was offline.*dirty blocks.*--force/);
    assert.equal(refused.stderr.trim().split('\n').length, 1);
    const detach = await blockcache(['detach', '--cache', cache]);
    assert.equal(detach.code, 1, 'detach does not write dirty blocks over a changed origin either');
    served = await serveCache(cache, directory.path, ['--force']);
    assert.equal(await readAt(served.uri, MiB, 4), '42424242', 'forced: the dirty data is served');
    assert.equal(Buffer.from(await readAt(served.uri, 100, 21), 'hex').toString(), 'someone else was here');
    await served.stop();
  } finally {
    await directory.remove();
  }
});

test('clean cache over an origin modified offline: served, stale copies dropped', async () => {
  const directory = await makeTempDir();
  try {
    const { origin, cache } = await createFileCache(directory, { originBytes: 32 * MiB, cacheBytes: 4 * MiB, mode: 'writethrough' });
    let served = await serveCache(cache, directory.path);
    await runChecked('nbdsh', ['-u', served.uri, '-c', 'h.pwrite(b"\\x11" * 65536, 0); h.pread(65536, 0); h.flush()']);
    await served.stop();
    assert.ok(JSON.parse((await blockcacheChecked(['status', '--cache', cache, '--json'])).stdout).validBlocks > 0);
    overwrite(origin, 0, Buffer.alloc(65536, 0x77));
    served = await serveCache(cache, directory.path);
    assert.equal(await readAt(served.uri, 0, 4), '77777777', 'the changed origin is served, not the stale cached copy');
    await served.stop();
  } finally {
    await directory.remove();
  }
});

test('origin replaced by another file: refused with dirty data; relocation to an identical copy accepted', async () => {
  const directory = await makeTempDir();
  try {
    const { origin, cache } = await createFileCache(directory, { originBytes: 32 * MiB, cacheBytes: 4 * MiB, mode: 'writeback' });
    let served = await serveCache(cache, directory.path);
    await runChecked('nbdsh', ['-u', served.uri, '-c', `h.pwrite(b"\\x5a" * 4096, ${2 * MiB}); h.flush()`]);
    await served.stop();
    const moved = directory.file('moved.img');
    fs.copyFileSync(origin, moved);
    // Same path, different file (a restore from backup, say): refused while dirty.
    // Copy first, then rename over it, so the new file cannot reuse the old inode number.
    fs.copyFileSync(moved, `${origin}.new`);
    fs.renameSync(`${origin}.new`, origin);
    const refused = await blockcache(['serve', '--cache', cache, '--socket', directory.file('y.sock')], 30_000);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /not the device the cache was created for/);
    // Explicit relocation to an identical copy: accepted.
    served = await serveCache(cache, directory.path, ['--origin', moved]);
    assert.equal(await readAt(served.uri, 2 * MiB, 2), '5a5a');
    await served.stop();
    // A relocation to an origin with different content is refused.
    const other = directory.file('other.img');
    fs.copyFileSync(moved, other);
    overwrite(other, 32 * MiB - 10, Buffer.from('different!'));
    const wrong = await blockcache(['serve', '--cache', cache, '--origin', other, '--socket', directory.file('z.sock')], 30_000);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /modified while the cache was offline/);
  } finally {
    await directory.remove();
  }
});
