// Large READ reply buffers and WRITE payloads, reused. A fresh multi-megabyte
// Buffer is new memory: the kernel zeroes and maps every page on first touch,
// which costs as much as the copy into it (measured: a 1 MiB reply served from
// RAM went from 0.7x to 1.3x nbdkit when the copy was skipped; 1 MiB cold
// writes went from 181-218 to 230-263 MiB/s with pooled payloads). A reply
// buffer comes back only after the socket has taken its bytes (the write
// callback), never after a failed read: a device may still be writing into a
// buffer whose read was rejected. A payload comes back only after its write
// succeeded, never after a failed one: parts of it may still be in flight.
// Bounded: at most REPLY_BUFFERS_KEEP_BYTES are kept, process-wide.
// Concurrency: single-threaded.
import { KiB, MiB } from '../constants.js';

/** Replies at least this large take a pooled buffer (smaller ones come from Node's pool or the slab). */
export const REPLY_BUFFER_BYTES_MIN = 64 * KiB;
/** Bytes of idle reply buffers kept for reuse, across all connections. */
export const REPLY_BUFFERS_KEEP_BYTES = 32 * MiB;

const free = new Map<number, Buffer[]>();
let keptBytes = 0;

/** A buffer of exactly `bytes` (content undefined). */
export function takeReplyBuffer(bytes: number): Buffer {
  const buffer = bytes >= REPLY_BUFFER_BYTES_MIN ? free.get(bytes)?.pop() : undefined;
  if (buffer === undefined) return Buffer.allocUnsafe(bytes);
  keptBytes -= bytes;
  return buffer;
}

/** Gives back a buffer nobody references any more (the socket has written it). */
export function giveReplyBuffer(buffer: Buffer): void {
  const bytes = buffer.length;
  if (bytes < REPLY_BUFFER_BYTES_MIN || buffer.byteOffset !== 0 || keptBytes + bytes > REPLY_BUFFERS_KEEP_BYTES) return;
  let list = free.get(bytes);
  if (list === undefined) free.set(bytes, (list = []));
  list.push(buffer);
  keptBytes += bytes;
}
