// Malformed trace lines are reported with file and line number; comments and
// blank lines are skipped; a request touches every block it overlaps.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { simulate } from '../../src/sim/simulate.js';
import { isBlockcacheError } from '../../src/stdx/errors.js';

const directory = mkdtempSync(join(tmpdir(), 'blockcache-sim-'));
after(() => rmSync(directory, { recursive: true, force: true }));

function traceFile(name: string, text: string): string {
  const path = join(directory, name);
  writeFileSync(path, text);
  return path;
}

const CONFIG = { cacheBlocks: 4, blockBytes: 4096, assoc: 'full' as const, policy: 'lru' };

test('test-sim-trace-errors: a bad op names the line', async () => {
  const path = traceFile('bad-op.csv', '# comment\nR,0,4096\nX,0,4096\n');
  await assert.rejects(simulate(path, CONFIG), (error: unknown) => isBlockcacheError(error, 'BAD_ARGUMENT') && /line 3: op must be R or W/.test((error as Error).message));
});

test('test-sim-trace-errors: a bad number or a missing field names the line', async () => {
  await assert.rejects(simulate(traceFile('bad-number.csv', 'R,0,4096\n\nW,-5,4096\n'), CONFIG), /line 3: offset_bytes must be a whole number/);
  await assert.rejects(simulate(traceFile('short.csv', 'R,0\n'), CONFIG), /line 1: expected 'op,offset_bytes,length_bytes'/);
});

test('test-sim-trace-errors: a missing file is a one-line error', async () => {
  await assert.rejects(simulate(join(directory, 'absent.csv'), CONFIG), (error: unknown) => isBlockcacheError(error, 'BAD_ARGUMENT') && !(error as Error).message.includes('\n'));
});

test('test-sim-trace-errors: requests touch every overlapped block; reads and writes both allocate', async () => {
  // 4096..12288 touches blocks 1 and 2 (2 accesses); 4095+2 bytes touch blocks 0 and 1.
  const path = traceFile('blocks.csv', '# op,offset,length\nW,4096,8192\nR,4095,2\nr,8192,1\nR,0,0\n');
  const result = await simulate(path, CONFIG);
  assert.deepEqual(result, { accesses: 5, misses: 3, missRatio: 3 / 5, readAccesses: 3, readMisses: 1, readMissRatio: 1 / 3 });
});
