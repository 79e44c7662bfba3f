// A pool of equal-sized buffers, so the hot path does not allocate a block
// buffer per miss. Bounded: buffers beyond `keepMax` are left to the GC.
import { assert } from './assert.js';

export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(readonly bufferBytes: number, private readonly keepMax: number) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.bufferBytes);
  }

  give(buffer: Buffer): void {
    assert(buffer.length === this.bufferBytes, 'buffer returned to the wrong pool');
    if (this.free.length < this.keepMax) this.free.push(buffer);
  }
}
