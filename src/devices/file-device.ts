// A BlockDevice over a regular file or a block device, with positional I/O.
//
// flush = fdatasync. Trim and write-zeroes punch or zero ranges with
// fallocate(1) where the file system supports it (Node has no fallocate(2));
// when it cannot, trim does nothing (it is a hint) and write-zeroes writes
// zero buffers. FUA is a write followed by fdatasync.
// Concurrency: the kernel orders nothing between overlapping positional writes;
// callers serialise conflicting operations.
import * as fs from 'node:fs';
import { execFile } from 'node:child_process';
import { BlockDevice, DeviceCapabilities, WriteFlags, ZeroFlags, checkRange } from './block-device.js';
import { BlockcacheError, fromSystemError } from '../stdx/errors.js';
import { MiB, VECTORED_BUFFERS_MAX } from '../constants.js';
import { assert } from '../stdx/assert.js';
import { PieceDevice, ScatterIoError, scatterIo } from './scatter-io.js';
import { INLINE_READ_SLOW_MS, INLINE_WRITE_SLOW_MS, InlineIoGate } from './inline-io-gate.js';
import { splitIntoPieces, writePieceLength } from './write-pieces.js';

/** Zero buffers are written in pieces of this size when zeroing cannot be done natively. */
const ZERO_WRITE_BYTES = 1 * MiB;
let zeroBuffer: Buffer | undefined;

function readAt(fd: number, target: Buffer, targetOffset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, target, targetOffset, length, position, (error, bytes) => (error ? reject(error) : resolve(bytes)));
  });
}

function writeAt(fd: number, source: Buffer, sourceOffset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.write(fd, source, sourceOffset, length, position, (error, bytes) => (error ? reject(error) : resolve(bytes)));
  });
}

function readvAt(fd: number, targets: readonly Buffer[], position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.readv(fd, targets, position, (error, bytes) => (error ? reject(error) : resolve(bytes)));
  });
}

function writevAt(fd: number, sources: readonly Buffer[], position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.writev(fd, sources, position, (error, bytes) => (error ? reject(error) : resolve(bytes)));
  });
}

/** The buffers left after the first `done` bytes of `buffers` (a short vectored transfer). */
export function remainingAfter(buffers: readonly Buffer[], done: number): Buffer[] {
  const rest: Buffer[] = [];
  let skip = done;
  for (const buffer of buffers) {
    if (skip >= buffer.length) skip -= buffer.length;
    else {
      rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
      skip = 0;
    }
  }
  return rest;
}

function totalLength(buffers: readonly Buffer[]): number {
  let bytes = 0;
  for (const buffer of buffers) bytes += buffer.length;
  return bytes;
}

function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())));
}

function runFallocate(args: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('fallocate', args, (error) => resolve(!error));
  });
}

export interface FileDeviceOptions {
  readonly readOnly?: boolean;
  /** Create a sparse regular file of this size if the path does not exist. */
  readonly createSizeBytes?: number;
  /**
   * Make small reads and writes synchronously on the calling thread while they
   * stay fast (src/devices/inline-io-gate.ts): for the cache device, whose
   * writes land in the page cache and whose hot reads come from it. Off by default.
   */
  readonly inlineIo?: boolean;
}

export class FileDevice implements BlockDevice, PieceDevice {
  readonly capabilities: DeviceCapabilities;
  private nativeZero: boolean;
  /** Decide which reads and which writes run inline (null: none do). */
  readonly inlineReads: InlineIoGate | null = null;
  readonly inlineWrites: InlineIoGate | null = null;

  private constructor(
    readonly name: string,
    private readonly fd: number,
    readonly sizeBytes: number,
    private readonly isRegularFile: boolean,
    inlineIo: boolean,
  ) {
    if (inlineIo) {
      this.inlineReads = new InlineIoGate(INLINE_READ_SLOW_MS);
      this.inlineWrites = new InlineIoGate(INLINE_WRITE_SLOW_MS);
    }
    this.nativeZero = isRegularFile;
    this.capabilities = { trim: isRegularFile, fastZero: isRegularFile, multiConn: true };
  }

  static async open(path: string, options: FileDeviceOptions = {}): Promise<FileDevice> {
    let fd: number;
    try {
      if (options.createSizeBytes !== undefined && !fs.existsSync(path)) {
        fd = fs.openSync(path, 'wx+', 0o600);
        fs.ftruncateSync(fd, options.createSizeBytes);
      } else {
        fd = fs.openSync(path, options.readOnly ? 'r' : 'r+');
      }
    } catch (error) {
      throw new BlockcacheError('DEVICE_OPEN', `cannot open ${path}: ${(error as Error).message}`);
    }
    const stat = fs.fstatSync(fd);
    let sizeBytes: number;
    if (stat.isFile()) sizeBytes = stat.size;
    else if (stat.isBlockDevice()) sizeBytes = blockDeviceSize(stat.rdev, path);
    else {
      fs.closeSync(fd);
      throw new BlockcacheError('DEVICE_OPEN', `${path} is neither a regular file nor a block device`);
    }
    return new FileDevice(path, fd, sizeBytes, stat.isFile(), options.inlineIo === true);
  }

  async read(target: Buffer, offsetBytes: number): Promise<void> {
    if (this.readNow(target, offsetBytes)) return;
    let done = 0;
    try {
      while (done < target.length) {
        const bytes = await readAt(this.fd, target, done, target.length - done, offsetBytes + done);
        if (bytes === 0) { target.fill(0, done); break; }
        done += bytes;
      }
    } catch (error) {
      throw fromSystemError(error, `read ${this.name} at ${offsetBytes + done}`);
    }
  }

  /**
   * The read done now, on the calling thread, when the inline gate allows it (an
   * `inlineIo` device; false: nothing done, call read()). Throws as read() does.
   */
  readNow(target: Buffer, offsetBytes: number): boolean {
    checkRange(this.sizeBytes, offsetBytes, target.length, false);
    const gate = this.inlineReads;
    if (gate === null) return false;
    const start = performance.now();
    if (!gate.allows(target.length, start)) return false;
    let done = 0;
    try {
      while (done < target.length) {
        const bytes = fs.readSync(this.fd, target, done, target.length - done, offsetBytes + done);
        if (bytes === 0) { target.fill(0, done); break; }
        done += bytes;
      }
    } catch (error) {
      throw fromSystemError(error, `read ${this.name} at ${offsetBytes + done}`);
    }
    gate.observe(start, performance.now());
    return true;
  }

  /** preadv into `targets` (BlockDevice.readv); past the end of a file reads as zeroes, like read(). */
  async readv(targets: readonly Buffer[], offsetBytes: number): Promise<void> {
    assert(targets.length <= VECTORED_BUFFERS_MAX, 'too many buffers for one vectored operation');
    const length = totalLength(targets);
    checkRange(this.sizeBytes, offsetBytes, length, false);
    let done = 0;
    try {
      while (done < length) {
        const rest = done === 0 ? targets : remainingAfter(targets, done);
        const bytes = await readvAt(this.fd, rest, offsetBytes + done);
        if (bytes === 0) {
          for (const buffer of rest) buffer.fill(0);
          break;
        }
        done += bytes;
      }
    } catch (error) {
      throw fromSystemError(error, `read ${this.name} at ${offsetBytes + done}`);
    }
  }

  /** pwritev from `sources` (BlockDevice.writev): one call per FILE_WRITE_PIECE_BYTES span, all at once. */
  async writev(sources: readonly Buffer[], offsetBytes: number): Promise<void> {
    assert(sources.length <= VECTORED_BUFFERS_MAX, 'too many buffers for one vectored operation');
    checkRange(this.sizeBytes, offsetBytes, totalLength(sources), true);
    await Promise.all(splitIntoPieces(sources, offsetBytes).map((piece) => this.writevPiece(piece.buffers, piece.position)));
  }

  /**
   * Every write system call stays within one FILE_WRITE_PIECE_BYTES span (src/devices/write-pieces.ts):
   * inline, the pieces follow each other; in the thread pool they run at once.
   */
  async write(source: Buffer, offsetBytes: number, flags?: WriteFlags): Promise<void> {
    checkRange(this.sizeBytes, offsetBytes, source.length, true);
    if (!this.writeInline(source, offsetBytes) && source.length > 0) {
      const pieces: Promise<void>[] = [];
      for (let at = 0; at < source.length;) {
        const length = writePieceLength(offsetBytes + at, source.length - at);
        pieces.push(this.writePiece(source, at, length, offsetBytes + at));
        at += length;
      }
      await Promise.all(pieces);
    }
    if (flags?.fua) await this.flush();
  }

  /**
   * The write done now, on the calling thread, when the inline gate allows it (an
   * `inlineIo` device; false: nothing done, call write()). A FUA write is declined.
   * Throws as write() does.
   */
  writeNow(source: Buffer, offsetBytes: number, flags?: WriteFlags): boolean {
    checkRange(this.sizeBytes, offsetBytes, source.length, true);
    return flags?.fua !== true && this.writeInline(source, offsetBytes);
  }

  /** write()'s inline case: the pieces written one after another on this thread, if the gate allows. */
  private writeInline(source: Buffer, offsetBytes: number): boolean {
    const gate = this.inlineWrites;
    if (gate === null) return false;
    const start = performance.now();
    if (!gate.allows(source.length, start)) return false;
    let done = 0;
    try {
      while (done < source.length) {
        done += fs.writeSync(this.fd, source, done, writePieceLength(offsetBytes + done, source.length - done), offsetBytes + done);
      }
    } catch (error) {
      throw fromSystemError(error, `write ${this.name} at ${offsetBytes + done}`);
    }
    gate.observe(start, performance.now());
    return true;
  }

  /** pwrite of `length` bytes of `source` from `from` at `position`, through the thread pool, until done. */
  private async writePiece(source: Buffer, from: number, length: number, position: number): Promise<void> {
    let done = 0;
    try {
      while (done < length) done += await writeAt(this.fd, source, from + done, length - done, position + done);
    } catch (error) {
      throw fromSystemError(error, `write ${this.name} at ${position + done}`);
    }
  }

  /** pwritev of `sources` at `position`, through the thread pool, until done. */
  private async writevPiece(sources: readonly Buffer[], position: number): Promise<void> {
    const length = totalLength(sources);
    let done = 0;
    try {
      while (done < length) {
        const bytes = await writevAt(this.fd, done === 0 ? sources : remainingAfter(sources, done), position + done);
        if (bytes === 0) throw new BlockcacheError('EIO', `write ${this.name} at ${position + done}: no progress`);
        done += bytes;
      }
    } catch (error) {
      if (error instanceof BlockcacheError) throw error;
      throw fromSystemError(error, `write ${this.name} at ${position + done}`);
    }
  }

  /** Would a small read (write) run inline now? Then batching it for a worker would only add a hop. */
  inlineNow(isRead: boolean): boolean {
    const gate = isRead ? this.inlineReads : this.inlineWrites;
    return gate !== null && gate.open(performance.now());
  }

  /** Batched scattered reads in a worker (src/devices/scatter-io.ts); errors are BlockcacheErrors. */
  readPieces(positions: Float64Array, lengths: Uint32Array, memory: SharedArrayBuffer, checksums = false): Promise<Uint32Array | undefined> {
    return this.pieces(false, positions, lengths, memory, checksums);
  }

  /** Batched scattered writes in a worker (src/devices/scatter-io.ts); errors are BlockcacheErrors. */
  async writePieces(positions: Float64Array, lengths: Uint32Array, memory: SharedArrayBuffer): Promise<void> {
    await this.pieces(true, positions, lengths, memory, false);
  }

  /** Starts the batched-I/O workers now (src/devices/scatter-io.ts). */
  warm(): void {
    scatterIo.warm();
  }

  private async pieces(write: boolean, positions: Float64Array, lengths: Uint32Array, memory: SharedArrayBuffer, checksums: boolean): Promise<Uint32Array | undefined> {
    for (let i = 0; i < positions.length; i++) checkRange(this.sizeBytes, positions[i]!, lengths[i] ?? 0, write);
    try {
      return await scatterIo.run(write, this.fd, positions, lengths, memory, checksums);
    } catch (error) {
      const position = error instanceof ScatterIoError && error.position >= 0 ? error.position : positions[0];
      throw fromSystemError(error, `${write ? 'write' : 'read'} ${this.name} at ${position}`);
    }
  }

  async flush(): Promise<void> {
    try {
      await fdatasync(this.fd);
    } catch (error) {
      throw fromSystemError(error, `flush ${this.name}`);
    }
  }

  async trim(offsetBytes: number, lengthBytes: number, flags?: WriteFlags): Promise<void> {
    checkRange(this.sizeBytes, offsetBytes, lengthBytes, true);
    if (lengthBytes === 0 || !this.isRegularFile) return;
    await runFallocate(['--punch-hole', '--keep-size', '-o', String(offsetBytes), '-l', String(lengthBytes), this.name]);
    if (flags?.fua) await this.flush();
  }

  async writeZeroes(offsetBytes: number, lengthBytes: number, flags?: ZeroFlags): Promise<void> {
    checkRange(this.sizeBytes, offsetBytes, lengthBytes, true);
    if (lengthBytes === 0) return;
    let done = false;
    if (this.nativeZero) {
      const mode = flags?.noHole ? ['--zero-range'] : ['--punch-hole'];
      done = await runFallocate([...mode, '--keep-size', '-o', String(offsetBytes), '-l', String(lengthBytes), this.name]);
      if (!done && !flags?.noHole) this.nativeZero = false;
    }
    if (!done) {
      if (flags?.fastZero) throw new BlockcacheError('ENOTSUP', `${this.name} cannot zero quickly`);
      zeroBuffer ??= Buffer.alloc(ZERO_WRITE_BYTES);
      for (let position = offsetBytes; position < offsetBytes + lengthBytes; position += ZERO_WRITE_BYTES) {
        const length = Math.min(ZERO_WRITE_BYTES, offsetBytes + lengthBytes - position);
        await this.write(zeroBuffer.subarray(0, length), position);
      }
    }
    if (flags?.fua) await this.flush();
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => fs.close(this.fd, () => resolve()));
  }
}

/** Size of a block device from sysfs (Node has no BLKGETSIZE64). */
function blockDeviceSize(rdev: number, path: string): number {
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | ((Math.floor(rdev / 2 ** 20) & 0xfff) << 8);
  try {
    const sectors = Number(fs.readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'utf8').trim());
    return sectors * 512;
  } catch {
    throw new BlockcacheError('DEVICE_OPEN', `cannot find the size of block device ${path}`);
  }
}
