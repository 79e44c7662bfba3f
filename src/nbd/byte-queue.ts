// A FIFO of received socket chunks that parsers consume by exact byte counts.
//
// Invariant: `availableBytes` is the sum of unread bytes over `chunks`, and
// `chunks[head]` starts at `headOffset`. Consumers copy bytes out into buffers
// they own (a reused header buffer, a WRITE payload buffer), so a chunk is never
// referenced after it has been consumed. A chunk may be a view of memory its
// producer reuses (a socket's receive buffer): the producer calls ownBytesIn
// before reusing it.
//
// Concurrency: single-threaded; owned by one connection. The async `readExact`
// is for the handshake only (one waiter at a time); the transmission phase
// polls `availableBytes` synchronously from the socket's data handler.
import { assert } from '../stdx/assert.js';
import { BlockcacheError } from '../stdx/errors.js';

export class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0;
  private headOffset = 0;
  private available = 0;
  private waiter: { bytes: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private endError: Error | null = null;

  get availableBytes(): number {
    return this.available;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.available += chunk.length;
    this.wakeWaiter();
  }

  /** The peer closed: pending and future `readExact` calls fail with `error`. */
  end(error: Error): void {
    if (this.endError === null) this.endError = error;
    const waiter = this.waiter;
    if (waiter !== null && this.available < waiter.bytes) {
      this.waiter = null;
      waiter.reject(this.endError);
    }
  }

  /**
   * Copies the unread bytes that live in `shared`'s memory into buffers of their
   * own: the caller is about to reuse `shared` (a socket's receive buffer).
   */
  ownBytesIn(shared: Buffer): void {
    for (let i = this.head; i < this.chunks.length; i++) {
      const chunk = this.chunks[i]!;
      if (chunk.buffer !== shared.buffer) continue;
      const from = i === this.head ? this.headOffset : 0;
      this.chunks[i] = Buffer.from(chunk.subarray(from));
      if (i === this.head) this.headOffset = 0;
    }
  }

  /** Copies `length` bytes into `target` at `targetOffset` and consumes them. */
  copyOut(target: Buffer, targetOffset: number, length: number): void {
    assert(length <= this.available && targetOffset + length <= target.length, 'byte queue copy out of range');
    let copied = 0;
    while (copied < length) {
      const chunk = this.chunks[this.head];
      assert(chunk !== undefined);
      const take = Math.min(length - copied, chunk.length - this.headOffset);
      chunk.copy(target, targetOffset + copied, this.headOffset, this.headOffset + take);
      copied += take;
      this.advance(take, chunk.length);
    }
    this.available -= length;
  }

  /** Copies the first `length` queued bytes into `target` without consuming them. */
  peek(target: Buffer, length: number): void {
    assert(length <= this.available && length <= target.length, 'byte queue peek out of range');
    let copied = 0;
    let index = this.head;
    let offset = this.headOffset;
    while (copied < length) {
      const chunk = this.chunks[index]!;
      const take = Math.min(length - copied, chunk.length - offset);
      chunk.copy(target, copied, offset, offset + take);
      copied += take;
      index += 1;
      offset = 0;
    }
  }

  /** Consumes and discards up to `length` bytes; returns how many were discarded. */
  skip(length: number): number {
    const skipped = Math.min(length, this.available);
    let remaining = skipped;
    while (remaining > 0) {
      const chunk = this.chunks[this.head];
      assert(chunk !== undefined);
      const take = Math.min(remaining, chunk.length - this.headOffset);
      remaining -= take;
      this.advance(take, chunk.length);
    }
    this.available -= skipped;
    return skipped;
  }

  /** Waits for `length` bytes and returns them in a new buffer (handshake only). */
  readExact(length: number): Promise<Buffer> {
    assert(this.waiter === null, 'one reader at a time');
    if (this.available >= length) return Promise.resolve(this.take(length));
    if (this.endError !== null) return Promise.reject(this.endError);
    return new Promise((resolve, reject) => {
      this.waiter = { bytes: length, resolve, reject };
    });
  }

  /** Cancels a pending `readExact` (e.g. on shutdown or timeout). */
  cancel(error: Error): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.reject(error);
  }

  private take(length: number): Buffer {
    const result = Buffer.allocUnsafe(length);
    this.copyOut(result, 0, length);
    return result;
  }

  private wakeWaiter(): void {
    const waiter = this.waiter;
    if (waiter === null || this.available < waiter.bytes) return;
    this.waiter = null;
    waiter.resolve(this.take(waiter.bytes));
  }

  private advance(take: number, chunkLength: number): void {
    this.headOffset += take;
    if (this.headOffset < chunkLength) return;
    this.head += 1;
    this.headOffset = 0;
    // Compact the array now and then instead of shifting on every chunk.
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    } else if (this.head >= 64) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}

/** The error a handshake read fails with when the peer closes. */
export function connectionClosedError(what: string): BlockcacheError {
  return new BlockcacheError('EIO', `${what}: connection closed by peer`);
}
