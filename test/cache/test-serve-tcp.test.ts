// `blockcache serve --listen HOST:PORT` serves the same export over TCP (with
// TCP_NODELAY) beside the Unix socket; a write on one is read on the other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFileCache, serveCache } from '../support/blockcache.js';
import { makeTempDir } from '../support/temp-dir.js';
import { runChecked, requireTools } from '../support/process.js';
import { freePort } from '../support/wait.js';

test('serve --listen: the export over TCP and the Unix socket is one device', async () => {
  await requireTools(['nbdinfo', 'nbdsh']);
  const directory = await makeTempDir();
  try {
    const { cache } = await createFileCache(directory, { originBytes: 16 * 1024 * 1024, cacheBytes: 4 * 1024 * 1024, mode: 'writeback' });
    const port = await freePort();
    const served = await serveCache(cache, directory.path, ['--listen', `127.0.0.1:${port}`]);
    try {
      const tcp = `nbd://127.0.0.1:${port}/`;
      const size = await runChecked('nbdinfo', ['--size', tcp]);
      assert.equal(size.stdout.trim(), String(16 * 1024 * 1024));
      await runChecked('nbdsh', ['-u', tcp, '-c', 'h.pwrite(b"T" * 4096, 8192); h.flush()']);
      await runChecked('nbdsh', ['-u', served.uri, '-c', 'assert h.pread(4096, 8192) == b"T" * 4096']);
    } finally {
      await served.stop();
    }
  } finally {
    await directory.remove();
  }
});
