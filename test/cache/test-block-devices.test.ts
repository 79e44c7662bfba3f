// Block devices as cache and origin: loop devices over files (needs root and
// losetup, like the nbdfuse tests). Size comes from sysfs, flush is fdatasync.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { blockcacheChecked, serveCache } from '../support/blockcache.js';
import { makeTempDir } from '../support/temp-dir.js';
import { runChecked, runCommand, requireTools } from '../support/process.js';

const MiB = 1024 * 1024;

test('a cache on a loop block device in front of a loop block device origin', async (t) => {
  await requireTools(['losetup', 'nbdsh']);
  if (process.getuid?.() !== 0) { t.skip('needs root for losetup'); return; }
  const directory = await makeTempDir();
  const loops: string[] = [];
  try {
    const attach = async (name: string, bytes: number) => {
      const file = directory.file(name);
      fs.writeFileSync(file, Buffer.alloc(0));
      fs.truncateSync(file, bytes);
      const loop = (await runChecked('losetup', ['-f', '--show', file])).stdout.trim();
      loops.push(loop);
      return loop;
    };
    const origin = await attach('origin.img', 64 * MiB);
    const cache = await attach('cache.img', 8 * MiB);
    await blockcacheChecked(['create', '--cache', cache, '--origin', origin, '--mode', 'writeback']);
    const status = JSON.parse((await blockcacheChecked(['status', '--cache', cache, '--json'])).stdout);
    assert.equal(status.originBytes, 64 * MiB, 'the block device size is read from sysfs');
    const data = randomBytes(3 * MiB);
    const dataFile = directory.file('data.bin');
    fs.writeFileSync(dataFile, data);
    let served = await serveCache(cache, directory.path);
    await runChecked('nbdsh', ['-u', served.uri, '-c', `h.pwrite(open(${JSON.stringify(dataFile)}, 'rb').read(), ${5 * MiB + 512}); h.flush()`]);
    await served.stop();
    served = await serveCache(cache, directory.path);
    await runChecked('nbdsh', ['-u', served.uri, '-c', `assert h.pread(${3 * MiB}, ${5 * MiB + 512}) == open(${JSON.stringify(dataFile)}, 'rb').read()`]);
    await served.stop();
    await blockcacheChecked(['detach', '--cache', cache]);
    const fd = fs.openSync(origin, 'r');
    const back = Buffer.alloc(3 * MiB);
    fs.readSync(fd, back, 0, back.length, 5 * MiB + 512);
    fs.closeSync(fd);
    assert.ok(back.equals(data), 'after detach the origin block device holds the data');
  } finally {
    for (const loop of loops) await runCommand('losetup', ['-d', loop]);
    await directory.remove();
  }
});
