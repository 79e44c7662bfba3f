// The two views that only appear on a terminal, run under a real pseudo-terminal
// (util-linux `script`): `blockcache flush` draws a progress bar (bytes left,
// rate, ETA) that reaches 100%, and `status --watch` redraws in place (cursor
// home, lines cleared) until interrupted, then gives the cursor back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLOCKCACHE_BIN, createFileCache, serveCache, ServedCache } from '../support/blockcache.js';
import { requireTools, runChecked, runCommand } from '../support/process.js';
import { startNbdkit, ProcessTarget } from '../support/nbd-servers.js';
import { makeTempDir } from '../support/temp-dir.js';
import { statusOf } from '../support/writeback.js';

const MiB = 1024 * 1024;
const HOME = '\x1b[H';
const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';

/** Runs a shell command line under a pseudo-terminal; returns everything it wrote. */
async function onTerminal(commandLine: string, timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  const result = await runCommand('script', ['-qfec', commandLine, '/dev/null'], { timeoutMs });
  return { code: result.code, output: result.stdout + result.stderr };
}

test('on a terminal: flush shows a progress bar to 100%, status --watch redraws in place', async () => {
  await requireTools(['script', 'nbdkit', 'nbdsh']);
  const directory = await makeTempDir();
  let origin: ProcessTarget | undefined;
  let served: ServedCache | undefined;
  try {
    // A slow origin (3 ms per write, one at a time) so the flush lasts long enough to draw.
    origin = await startNbdkit({ size: '64M', before: ['--filter=noparallel', '--filter=delay'], params: ['wdelay=3ms'] });
    const { cache } = await createFileCache(directory, { originSpec: origin.uri, cacheBytes: 32 * MiB, mode: 'writeback', assoc: 'full' });
    served = await serveCache(cache, directory.path, ['--ram-cache', '0', '--set', 'dirty-threshold=100']);
    // Every other 64 KiB dirty over 16 MiB: many separate origin writes.
    await runChecked('nbdsh', ['-u', served.uri, '-c',
      `for i in range(0, ${16 * MiB}, 131072):\n    h.pwrite(b'f' * 65536, i)\nh.flush()`], { timeoutMs: 60_000 });
    assert.ok((await statusOf(served.control)).dirtyBlocks! >= 2048);

    const quote = (text: string) => `'${text}'`;
    const bin = `${quote(process.execPath)} ${quote(BLOCKCACHE_BIN)}`;
    const watch = await onTerminal(`timeout -s INT 2.5 ${bin} status --control ${quote(served.control)} --watch`);
    assert.ok(watch.output.startsWith(HIDE_CURSOR) || watch.output.includes(HIDE_CURSOR), 'the watch hides the cursor');
    assert.ok(watch.output.split(HOME).length - 1 >= 2, `the watch redrew in place at least twice: ${JSON.stringify(watch.output.slice(0, 300))}`);
    assert.match(watch.output, /dirty\s+\d+ blocks/);
    assert.ok(watch.output.includes(SHOW_CURSOR), 'Ctrl-C gives the cursor back');

    const flushed = await onTerminal(`${bin} flush --control ${quote(served.control)}`);
    assert.equal(flushed.code, 0, `flush on a terminal: exit ${flushed.code}\n${flushed.output}`);
    assert.match(flushed.output, /flushing \[[\u2588\u2591]+\] \d+% \| .* left \| .*\/s \| ETA /, 'a progress bar with bytes left, rate and ETA');
    assert.match(flushed.output, /100%/);
    assert.match(flushed.output, /0 dirty blocks now/);
    assert.equal((await statusOf(served.control)).dirtyBlocks, 0);
  } finally {
    await served?.stop().catch(() => {});
    await origin?.stop();
    await directory.remove();
  }
});
