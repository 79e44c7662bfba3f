// A sparse in-memory BlockDevice for tests and simulations.
//
// Data lives in fixed-size chunks allocated on first write, so a large device
// costs nothing until written. Every operation completes synchronously inside
// its promise, so the device is durable at once (flush is a no-op).
import { BlockDevice, DeviceCapabilities, Extent, WriteFlags, ZeroFlags, checkRange } from './block-device.js';
import { MEMORY_DEVICE_CHUNK_BYTES } from '../constants.js';
import { BlockcacheError } from '../stdx/errors.js';
import { assert } from '../stdx/assert.js';

const NBD_STATE_HOLE_ZERO = 3;

export class MemoryDevice implements BlockDevice {
  readonly capabilities: DeviceCapabilities = { trim: true, fastZero: true, multiConn: true };
  private readonly chunks = new Map<number, Buffer>();
  private closed = false;

  constructor(readonly sizeBytes: number, readonly name = `memory:${sizeBytes}`) {
    assert(Number.isSafeInteger(sizeBytes) && sizeBytes >= 0, 'memory device size');
  }

  async read(target: Buffer, offsetBytes: number): Promise<void> {
    this.readSync(target, offsetBytes);
  }

  readSync(target: Buffer, offsetBytes: number): void {
    this.checkOpen();
    checkRange(this.sizeBytes, offsetBytes, target.length, false);
    this.forEachChunk(offsetBytes, target.length, (chunk, chunkOffset, done, length) => {
      if (chunk) chunk.copy(target, done, chunkOffset, chunkOffset + length);
      else target.fill(0, done, done + length);
    }, false);
  }

  async write(source: Buffer, offsetBytes: number, _flags?: WriteFlags): Promise<void> {
    this.writeSync(source, offsetBytes);
  }

  writeSync(source: Buffer, offsetBytes: number): void {
    this.checkOpen();
    checkRange(this.sizeBytes, offsetBytes, source.length, true);
    this.forEachChunk(offsetBytes, source.length, (chunk, chunkOffset, done, length) => {
      assert(chunk);
      source.copy(chunk, chunkOffset, done, done + length);
    }, true);
  }

  async flush(): Promise<void> {
    this.checkOpen();
  }

  async trim(offsetBytes: number, lengthBytes: number, _flags?: WriteFlags): Promise<void> {
    await this.writeZeroes(offsetBytes, lengthBytes, {});
  }

  async writeZeroes(offsetBytes: number, lengthBytes: number, _flags?: ZeroFlags): Promise<void> {
    this.checkOpen();
    checkRange(this.sizeBytes, offsetBytes, lengthBytes, true);
    this.forEachChunk(offsetBytes, lengthBytes, (chunk, chunkOffset, _done, length, index) => {
      if (!chunk) return;
      if (length === MEMORY_DEVICE_CHUNK_BYTES) this.chunks.delete(index);
      else chunk.fill(0, chunkOffset, chunkOffset + length);
    }, false);
  }

  async blockStatus(offsetBytes: number, lengthBytes: number): Promise<Extent[]> {
    this.checkOpen();
    checkRange(this.sizeBytes, offsetBytes, lengthBytes, false);
    const extents: Extent[] = [];
    this.forEachChunk(offsetBytes, lengthBytes, (chunk, _chunkOffset, _done, length) => {
      const flags = chunk ? 0 : NBD_STATE_HOLE_ZERO;
      const last = extents[extents.length - 1];
      if (last && last.flags === flags) last.lengthBytes += length;
      else extents.push({ lengthBytes: length, flags });
    }, false);
    return extents;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Bytes of memory actually allocated (for tests). */
  get allocatedBytes(): number {
    return this.chunks.size * MEMORY_DEVICE_CHUNK_BYTES;
  }

  private checkOpen(): void {
    if (this.closed) throw new BlockcacheError('ESHUTDOWN', `${this.name} is closed`);
  }

  private forEachChunk(
    offsetBytes: number, lengthBytes: number,
    visit: (chunk: Buffer | undefined, chunkOffset: number, done: number, length: number, index: number) => void,
    allocate: boolean,
  ): void {
    let done = 0;
    while (done < lengthBytes) {
      const position = offsetBytes + done;
      const index = Math.floor(position / MEMORY_DEVICE_CHUNK_BYTES);
      const chunkOffset = position - index * MEMORY_DEVICE_CHUNK_BYTES;
      const length = Math.min(lengthBytes - done, MEMORY_DEVICE_CHUNK_BYTES - chunkOffset);
      let chunk = this.chunks.get(index);
      if (!chunk && allocate) {
        chunk = Buffer.alloc(MEMORY_DEVICE_CHUNK_BYTES);
        this.chunks.set(index, chunk);
      }
      visit(chunk, chunkOffset, done, length, index);
      done += length;
    }
  }
}
