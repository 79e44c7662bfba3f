// Section G of nbd-conformance.md: nbdfuse → loop → ext4 → cp → fstrim → fsck.
// Needs root, /dev/fuse and loop devices. Everything mounted or attached is torn
// down in a finally, in reverse order, even when a step fails.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { describe, test } from 'node:test';
import { describeResult, requireTools, runCommand, spawnBackground } from './process.js';
import { waitFor } from './wait.js';
import type { SuiteContext } from './conformance.js';

async function ok(what: string, command: string, args: string[], timeoutMs = 120_000): Promise<string> {
  const result = await runCommand(command, args, { timeoutMs });
  assert.equal(result.code, 0, describeResult(what, result));
  return result.stdout;
}

export function defineFilesystemChecks(c: SuiteContext, skip: boolean): void {
  describe('G. nbdfuse + loop + ext4', () => {
    test('G mkfs, mount, cp, fstrim, fsck through nbdfuse', { skip: skip ? 'skipFuse was set by the caller' : false }, async () => {
      await requireTools(['nbdfuse', 'losetup', 'mkfs.ext4', 'fsck.ext4', 'fstrim', 'fusermount3', 'mount', 'umount']);
      assert.ok(fs.existsSync('/dev/fuse'), '/dev/fuse is missing');
      const mnt = c.dir.file('mnt');
      const fsDir = c.dir.file('fs');
      fs.mkdirSync(mnt);
      fs.mkdirSync(fsDir);
      // Never touch the mount synchronously: the server may run in this process, and a
      // blocking stat on the FUSE file would wait for a server that cannot run.
      const pidPath = c.dir.file('nbdfuse.pid');
      const fuse = spawnBackground('nbdfuse', ['-P', pidPath, mnt, c.uri], { logPath: c.dir.file('nbdfuse.log') });
      let loop = '';
      let mounted = false;
      try {
        await Promise.race([
          waitFor('nbdfuse to write its pid file', () => fs.existsSync(pidPath), 15_000),
          fuse.exited.then((code) => { throw new Error(`nbdfuse exited (${code}): ${fuse.output()}`); }),
        ]);
        loop = (await ok('losetup', 'losetup', ['-f', '--show', `${mnt}/nbd`])).trim();
        await ok('mkfs.ext4', 'mkfs.ext4', ['-q', '-F', loop]);
        await ok('mount', 'mount', [loop, fsDir]);
        mounted = true;
        await ok('cp', 'cp', [c.sourceImage, `${fsDir}/a`]);
        await ok('sync', 'sync', []);
        await ok('cmp', 'cmp', [c.sourceImage, `${fsDir}/a`]);
        await ok('fstrim', 'fstrim', ['-v', fsDir]);
        await ok('umount', 'umount', [fsDir]);
        mounted = false;
        await ok('fsck.ext4', 'fsck.ext4', ['-fn', loop]);
      } finally {
        if (mounted) await runCommand('umount', ['-l', fsDir], { timeoutMs: 30_000 });
        if (loop !== '') await runCommand('losetup', ['-d', loop], { timeoutMs: 30_000 });
        await runCommand('fusermount3', ['-u', mnt], { timeoutMs: 30_000 });
        await Promise.race([fuse.exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
        await fuse.stop();
      }
      await ok('ext4 magic persisted', 'nbdsh', ['-u', c.uri, '-c', 'assert h.pread(2, 1024+56) == b"\\x53\\xef"']);
    });
  });
}
