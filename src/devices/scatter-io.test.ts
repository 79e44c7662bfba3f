// Unit tests of batched scattered I/O (scatter-io.ts, FileDevice.readPieces /
// writePieces): every piece lands exactly at its offset, adjacent pieces are
// handled like separate ones, checksums match, and errors come back as
// BlockcacheError (EIO for a failed system call, range errors as usual).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileDevice } from './file-device.js';
import { ScatterIo, ScatterIoError, scatterIo } from './scatter-io.js';
import { BlockcacheError } from '../stdx/errors.js';
import { crc32c } from '../stdx/checksum.js';

const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'blockcache-scatter-io-'));
after(async () => {
  await scatterIo.close();
  fs.rmSync(directory, { recursive: true, force: true });
});

const SIZE = 8 * 1024 * 1024;

function pattern(size: number, seed: number): Buffer {
  const data = Buffer.alloc(size);
  let x = seed;
  for (let i = 0; i < size; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    data.writeUInt32LE(x, i);
  }
  return data;
}

/** Scattered pieces: random 4 KiB-aligned offsets, a few adjacent pairs, varied lengths. */
function pieces(count: number): { positions: Float64Array; lengths: Uint32Array; bytes: number } {
  const positions = new Float64Array(count);
  const lengths = new Uint32Array(count);
  let bytes = 0;
  let x = 7;
  for (let i = 0; i < count; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const length = [512, 4096, 8192, 1000][x % 4]!;
    // Every fifth piece continues the previous one on the file (merged into one system call).
    const position = i > 0 && i % 5 === 0 ? positions[i - 1]! + lengths[i - 1]! : ((x >>> 8) % (SIZE / 4096 - 4)) * 4096;
    positions[i] = position;
    lengths[i] = length;
    bytes += length;
  }
  return { positions, lengths, bytes };
}

test('readPieces returns exactly the bytes at each offset, with their checksums', async () => {
  const file = path.join(directory, 'read.img');
  const content = pattern(SIZE, 1);
  fs.writeFileSync(file, content);
  const device = await FileDevice.open(file);
  try {
    const { positions, lengths, bytes } = pieces(300);
    const memory = scatterIo.memory(bytes);
    const checksums = await device.readPieces(positions, lengths, memory, true);
    const data = Buffer.from(memory, 0, bytes);
    let at = 0;
    for (let i = 0; i < positions.length; i++) {
      const expected = content.subarray(positions[i]!, positions[i]! + lengths[i]!);
      assert.ok(data.subarray(at, at + lengths[i]!).equals(expected), `piece ${i} at ${positions[i]}`);
      assert.equal(checksums![i], crc32c(expected));
      at += lengths[i]!;
    }
    // Without checksums: none come back.
    assert.equal(await device.readPieces(positions.subarray(0, 1), lengths.subarray(0, 1), memory), undefined);
    scatterIo.recycle(memory);
  } finally {
    await device.close();
  }
});

test('writePieces writes exactly each piece and nothing else', async () => {
  const file = path.join(directory, 'write.img');
  const content = pattern(SIZE, 2);
  fs.writeFileSync(file, content);
  const device = await FileDevice.open(file);
  try {
    // Distinct, non-overlapping pieces (the coalescing layer never batches overlapping writes).
    const positions = new Float64Array(64);
    const lengths = new Uint32Array(64).fill(4096);
    for (let i = 0; i < 64; i++) positions[i] = ((i * 37) % 2000) * 4096 + (i % 3 === 0 ? 512 : 0);
    const source = pattern(64 * 4096, 3);
    const memory = scatterIo.memory(source.length);
    new Uint8Array(memory).set(source);
    await device.writePieces(positions, lengths, memory);
    const expected = Buffer.from(content);
    for (let i = 0; i < 64; i++) source.copy(expected, positions[i]!, i * 4096, (i + 1) * 4096);
    assert.ok(fs.readFileSync(file).equals(expected));
  } finally {
    await device.close();
  }
});

test('a failed system call comes back as BlockcacheError EIO; out of range as ENOSPC/EINVAL before any I/O', async () => {
  const file = path.join(directory, 'errors.img');
  fs.writeFileSync(file, pattern(1024 * 1024, 4));
  const readOnly = await FileDevice.open(file, { readOnly: true });
  try {
    const memory = scatterIo.memory(4096);
    // A write through a read-only descriptor fails in the worker with EBADF.
    await assert.rejects(readOnly.writePieces(new Float64Array([8192]), new Uint32Array([4096]), memory), (error: unknown) => {
      assert.ok(error instanceof BlockcacheError);
      assert.equal(error.code, 'EIO');
      assert.match(error.message, /errors\.img at 8192/);
      return true;
    });
    await assert.rejects(readOnly.readPieces(new Float64Array([1024 * 1024]), new Uint32Array([4096]), scatterIo.memory(4096)), BlockcacheError);
  } finally {
    await readOnly.close();
  }
  // The pool itself reports the errno and the failing position.
  const pool = new ScatterIo(1);
  try {
    const fd = fs.openSync(directory, 'r'); // reading a directory: EISDIR
    try {
      await assert.rejects(pool.run(false, fd, new Float64Array([0]), new Uint32Array([512]), new SharedArrayBuffer(512)), (error: unknown) => {
        assert.ok(error instanceof ScatterIoError);
        assert.equal(error.code, 'EISDIR');
        assert.equal(error.position, 0);
        return true;
      });
    } finally {
      fs.closeSync(fd);
    }
    await assert.rejects(pool.run(false, 0, new Float64Array([0]), new Uint32Array([8192]), new SharedArrayBuffer(4096)), /do not fit/);
  } finally {
    await pool.close();
  }
});

test('jobs spread over the workers; a stopped pool fails its jobs and starts again', async () => {
  const file = path.join(directory, 'many.img');
  const content = pattern(SIZE, 5);
  fs.writeFileSync(file, content);
  const fd = fs.openSync(file, 'r');
  const pool = new ScatterIo(3);
  try {
    const jobs = Array.from({ length: 12 }, (_, j) => {
      const positions = new Float64Array(16).map((_, i) => ((j * 16 + i) * 4096 * 3) % (SIZE - 4096));
      const lengths = new Uint32Array(16).fill(4096);
      const memory = new SharedArrayBuffer(16 * 4096);
      return pool.run(false, fd, positions, lengths, memory).then(() => ({ positions, memory }));
    });
    for (const { positions, memory } of await Promise.all(jobs)) {
      const data = Buffer.from(memory);
      positions.forEach((position, i) => assert.ok(data.subarray(i * 4096, (i + 1) * 4096).equals(content.subarray(position, position + 4096))));
    }
    const running = pool.run(false, fd, new Float64Array([0]), new Uint32Array([4096]), new SharedArrayBuffer(4096));
    const stopped = pool.close();
    await assert.rejects(running, ScatterIoError).catch(() => {}); // it may also have finished first
    await stopped;
    const memory = new SharedArrayBuffer(4096);
    await pool.run(false, fd, new Float64Array([4096]), new Uint32Array([4096]), memory);
    assert.ok(Buffer.from(memory).equals(content.subarray(4096, 8192)));
  } finally {
    await pool.close();
    fs.closeSync(fd);
  }
});

test('warmed workers, idle or after a job, never keep the process alive', async () => {
  const { spawnSync } = await import('node:child_process');
  const module = new URL('./scatter-io.js', import.meta.url).href;
  const file = path.join(directory, 'warm.img');
  fs.writeFileSync(file, Buffer.alloc(8192, 1));
  const script = `
    import * as fs from 'node:fs';
    import { scatterIo } from ${JSON.stringify(module)};
    scatterIo.warm();
    if (process.argv[2] === 'job') {
      const fd = fs.openSync(${JSON.stringify(file)}, 'r');
      await scatterIo.run(false, fd, new Float64Array([4096]), new Uint32Array([4096]), scatterIo.memory(4096));
    }
    process.stdout.write('done');`;
  // A script file, not --eval: workers inherit the parent's execArgv.
  const scriptFile = path.join(directory, 'warm.mjs');
  fs.writeFileSync(scriptFile, script);
  for (const variant of ['idle', 'job']) {
    const child = spawnSync(process.execPath, [scriptFile, variant], { timeout: 20_000, encoding: 'utf8' });
    assert.equal(child.error, undefined, `${variant}: the process did not exit by itself (${child.error?.message})`);
    assert.equal(child.status, 0, `${variant}: ${child.stderr}`);
    assert.equal(child.stdout, 'done');
  }
});
