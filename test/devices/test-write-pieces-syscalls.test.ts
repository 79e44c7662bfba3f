// The system calls themselves: every write a FileDevice makes to a file stays within
// one FILE_WRITE_PIECE_BYTES span (src/devices/write-pieces.ts), whether it is made
// inline, through the thread pool (write, writev) or by a scatter-I/O worker. Checked
// with strace on a child process that drives a FileDevice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from '../support/temp-dir.js';
import { requireTools, runChecked } from '../support/process.js';
import { FILE_WRITE_PIECE_BYTES } from '../../src/constants.js';

const DIST_SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

test('file writes are cut at FILE_WRITE_PIECE_BYTES boundaries: write (inline and pool), writev, worker pieces', async () => {
  await requireTools(['strace']);
  const directory = await makeTempDir();
  try {
    const file = directory.file('device.img');
    const script = directory.file('drive.mjs');
    const P = FILE_WRITE_PIECE_BYTES;
    const writes = [
      // [what, offset, length]
      ['pool write', P - 4096, 1024 * 1024],
      ['inline write', 20 * P - 1000, 8192],
      ['writev', 40 * P + 512, 3 * P],
      ['worker pieces', 80 * P - 4096, 4 * P],
    ] as const;
    const source = `
      import { FileDevice } from ${JSON.stringify(path.join(DIST_SRC, 'devices/file-device.js'))};
      const device = await FileDevice.open(${JSON.stringify(file)}, { createSizeBytes: ${128 * P}, inlineIo: true });
      await device.write(Buffer.alloc(${writes[0][2]}, 1), ${writes[0][1]});
      await device.write(Buffer.alloc(${writes[1][2]}, 2), ${writes[1][1]});
      await device.writev([Buffer.alloc(${P + 100}, 3), Buffer.alloc(${2 * P - 100}, 4)], ${writes[2][1]});
      const memory = new SharedArrayBuffer(${writes[3][2]});
      await device.writePieces(new Float64Array([${writes[3][1]}, ${writes[3][1] + 2 * P}]), new Uint32Array([${2 * P}, ${2 * P}]), memory);
      await device.close();
      process.exit(0);
    `;
    const fs = await import('node:fs');
    fs.writeFileSync(script, source);
    const trace = directory.file('trace.txt');
    // -ff: one output file per thread (trace.PID), so no call is split into unfinished/resumed lines.
    await runChecked('strace', ['-ff', '-qq', '-e', 'trace=pwrite64,pwritev,pwritev2', '-P', file, '-o', trace, process.execPath, script], { timeoutMs: 60_000 });
    const lines = fs.readdirSync(directory.path).filter((name) => name.startsWith('trace.txt.'))
      .flatMap((name) => fs.readFileSync(directory.file(name), 'utf8').split('\n'));
    const calls = lines.filter((line) => /pwrite/.test(line) && / = \d+$/.test(line)).map((line) => {
      // pwrite64(fd, buf, count, offset) and pwritev(fd, iov, iovcnt, offset): the offset is the last argument.
      const match = /^(?:pwrite64|pwritev)\(.*, (\d+)\) += (\d+)$/.exec(line);
      assert.ok(match, `parsed: ${line}`);
      return { offset: Number(match[1]), bytes: Number(match[2]) };
    });
    const inside = (offset: number, length: number) => calls.filter((call) => call.offset >= offset && call.offset < offset + length);
    for (const [what, offset, length] of writes) {
      const mine = inside(offset, length);
      assert.equal(mine.reduce((sum, call) => sum + call.bytes, 0), length, `${what}: every byte written once (${JSON.stringify(mine)})`);
      for (const call of mine) {
        assert.equal(Math.floor(call.offset / P), Math.floor((call.offset + call.bytes - 1) / P), `${what}: a call within one span: ${JSON.stringify(call)}`);
      }
      assert.ok(mine.length > 1, `${what}: cut into several calls`);
    }
  } finally {
    await directory.remove();
  }
});
