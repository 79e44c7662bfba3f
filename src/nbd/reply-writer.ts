// Encodes transmission replies and batches them onto one socket.
//
// Small replies (simple replies, NONE/ERROR chunks) and READ replies answered
// synchronously (readNow: built in place) are appended to a slab.
// READ replies arrive as one buffer that already has room for the reply header
// in front of the data (allocated by the caller at exactly header + payload
// size), so header and data need no copy. The socket is corked from the first
// reply of an event-loop turn until setImmediate (the check phase, right after
// the poll phase that delivered the device completions): every reply of that
// turn, small or large, leaves in one writev instead of one write(2) each. A
// reply waits at most until the end of the current loop turn.
//
// Invariant: bytes reach the socket in the order the reply methods were called;
// the slab is flushed before any large buffer is written. A slab region handed
// to the socket is never written again (we only append past it).
//
// Concurrency: single-threaded; owned by one connection. Writes after the
// socket closed are dropped silently (the peer is gone).
import type { Socket } from 'node:net';
import { KiB } from '../constants.js';
import { Extent } from '../devices/block-device.js';
import * as P from './protocol.js';
import { giveReplyBuffer, REPLY_BUFFER_BYTES_MIN, takeReplyBuffer } from './reply-buffers.js';

/** Slab for small replies and synchronous READ replies: 60 replies of 4 KiB, or 16,000 simple replies. */
const SLAB_BYTES = 256 * KiB;
/** Synchronous READ replies up to this size are built in the slab (no allocation per reply); larger ones may be lent views. */
export const SLAB_READ_BYTES_MAX = 64 * KiB;
/** The largest small reply we append: an ERROR chunk with no message. */
const SMALL_REPLY_BYTES_MAX = P.NBD_STRUCTURED_REPLY_HEADER_BYTES + 6;

/** Header bytes to reserve in front of READ data. */
export function readReplyHeaderBytes(structuredReplies: boolean): number {
  return structuredReplies ? P.NBD_STRUCTURED_REPLY_HEADER_BYTES + 8 : P.NBD_SIMPLE_REPLY_HEADER_BYTES;
}

export class ReplyWriter {
  private slab = Buffer.allocUnsafe(SLAB_BYTES);
  private slabStart = 0;
  private slabEnd = 0;
  private turnScheduled = false;
  /** Ends the turn: the slab joins the corked writes, then they all leave at once. */
  private readonly endTurn = (): void => {
    this.flush(); // Still inside the turn: this write does not start another one.
    this.turnScheduled = false;
    if (this.socket.writableCorked > 0) this.socket.uncork();
  };

  constructor(private readonly socket: Socket) {}

  /** A simple reply without data (any command, or a failed READ without SR). */
  simple(cookieHigh: number, cookieLow: number, errno: number): void {
    const at = this.reserve(P.NBD_SIMPLE_REPLY_HEADER_BYTES);
    const slab = this.slab;
    slab.writeUInt32BE(P.NBD_SIMPLE_REPLY_MAGIC, at);
    slab.writeUInt32BE(errno, at + 4);
    slab.writeUInt32BE(cookieHigh, at + 8);
    slab.writeUInt32BE(cookieLow, at + 12);
  }

  /** The final NONE chunk (success without data under SR, e.g. a zero-length READ). */
  structuredNone(cookieHigh: number, cookieLow: number): void {
    const at = this.reserve(P.NBD_STRUCTURED_REPLY_HEADER_BYTES);
    writeChunkHeader(this.slab, at, P.NBD_REPLY_FLAG_DONE, P.NBD_REPLY_TYPE_NONE, cookieHigh, cookieLow, 0);
  }

  /** A final ERROR chunk with an empty message. */
  structuredError(cookieHigh: number, cookieLow: number, errno: number): void {
    const at = this.reserve(SMALL_REPLY_BYTES_MAX);
    writeChunkHeader(this.slab, at, P.NBD_REPLY_FLAG_DONE, P.NBD_REPLY_TYPE_ERROR, cookieHigh, cookieLow, 6);
    this.slab.writeUInt32BE(errno, at + P.NBD_STRUCTURED_REPLY_HEADER_BYTES);
    this.slab.writeUInt16BE(0, at + P.NBD_STRUCTURED_REPLY_HEADER_BYTES + 4);
  }

  /**
   * Sends a successful READ: `buffer` holds readReplyHeaderBytes() of space and
   * then exactly the data. Under SR it is one OFFSET_DATA chunk marked DONE.
   */
  readData(buffer: Buffer, structuredReplies: boolean, cookieHigh: number, cookieLow: number, offsetBytes: number): void {
    if (structuredReplies) {
      const payloadBytes = buffer.length - P.NBD_STRUCTURED_REPLY_HEADER_BYTES;
      writeChunkHeader(buffer, 0, P.NBD_REPLY_FLAG_DONE, P.NBD_REPLY_TYPE_OFFSET_DATA, cookieHigh, cookieLow, payloadBytes);
      writeUInt64(buffer, P.NBD_STRUCTURED_REPLY_HEADER_BYTES, offsetBytes);
    } else {
      writeSimpleHeader(buffer, 0, cookieHigh, cookieLow);
    }
    // Large reply buffers go back to the pool once the socket has written them.
    this.writeLarge(buffer, buffer.length >= REPLY_BUFFER_BYTES_MIN ? giveReplyBuffer : undefined);
  }

  /**
   * A READ answered synchronously: the reply is built in place in the slab, so
   * it costs no allocation and leaves with the other replies of the turn.
   * `fill` fills the data area and returns false if it cannot (then nothing is
   * sent and false is returned: the caller takes the asynchronous path).
   */
  readNow(structuredReplies: boolean, cookieHigh: number, cookieLow: number, offsetBytes: number, lengthBytes: number,
    fill: (target: Buffer, offsetBytes: number) => boolean): boolean {
    const headerBytes = readReplyHeaderBytes(structuredReplies);
    if (lengthBytes > SLAB_READ_BYTES_MAX) {
      const buffer = takeReplyBuffer(headerBytes + lengthBytes);
      if (!fill(buffer.subarray(headerBytes), offsetBytes)) {
        giveReplyBuffer(buffer); // filled synchronously or not at all: nobody else holds it
        return false;
      }
      this.readData(buffer, structuredReplies, cookieHigh, cookieLow, offsetBytes);
      return true;
    }
    const at = this.reserve(headerBytes + lengthBytes);
    const slab = this.slab;
    if (!fill(slab.subarray(at + headerBytes, at + headerBytes + lengthBytes), offsetBytes)) {
      this.slabEnd = at; // nothing was appended after it (single-threaded)
      return false;
    }
    if (structuredReplies) {
      writeChunkHeader(slab, at, P.NBD_REPLY_FLAG_DONE, P.NBD_REPLY_TYPE_OFFSET_DATA, cookieHigh, cookieLow, lengthBytes + 8);
      writeUInt64(slab, at + P.NBD_STRUCTURED_REPLY_HEADER_BYTES, offsetBytes);
    } else {
      writeSimpleHeader(slab, at, cookieHigh, cookieLow);
    }
    return true;
  }

  /**
   * A READ answered with lent views (zero-copy): the header goes in the slab,
   * the views follow it on the socket as they are, and `release` runs once the
   * socket has taken the last of them (or at once if the socket is gone).
   */
  readViews(structuredReplies: boolean, cookieHigh: number, cookieLow: number, offsetBytes: number, lengthBytes: number,
    views: readonly Buffer[], release: () => void): void {
    const at = this.reserve(readReplyHeaderBytes(structuredReplies));
    const slab = this.slab;
    if (structuredReplies) {
      writeChunkHeader(slab, at, P.NBD_REPLY_FLAG_DONE, P.NBD_REPLY_TYPE_OFFSET_DATA, cookieHigh, cookieLow, lengthBytes + 8);
      writeUInt64(slab, at + P.NBD_STRUCTURED_REPLY_HEADER_BYTES, offsetBytes);
    } else writeSimpleHeader(slab, at, cookieHigh, cookieLow);
    this.flush();
    const lastView = views.length - 1;
    for (let i = 0; i < lastView; i++) this.write(views[i]!);
    // Writes complete in order: when the last view is taken, all of them are.
    this.write(views[lastView]!, release);
  }

  /** One BLOCK_STATUS chunk (DONE) for one context. `count` extents from `extents`. */
  blockStatus(cookieHigh: number, cookieLow: number, contextId: number, extents: readonly Extent[], count: number): void {
    const payloadBytes = 4 + 8 * count;
    const buffer = Buffer.allocUnsafe(P.NBD_STRUCTURED_REPLY_HEADER_BYTES + payloadBytes);
    writeChunkHeader(buffer, 0, P.NBD_REPLY_FLAG_DONE, P.NBD_REPLY_TYPE_BLOCK_STATUS, cookieHigh, cookieLow, payloadBytes);
    buffer.writeUInt32BE(contextId, P.NBD_STRUCTURED_REPLY_HEADER_BYTES);
    let at = P.NBD_STRUCTURED_REPLY_HEADER_BYTES + 4;
    for (let i = 0; i < count; i++) {
      const extent = extents[i]!;
      buffer.writeUInt32BE(extent.lengthBytes, at);
      buffer.writeUInt32BE(extent.flags & (P.NBD_STATE_HOLE | P.NBD_STATE_ZERO), at + 4);
      at += 8;
    }
    this.writeLarge(buffer);
  }

  /** Writes everything batched so far. */
  flush(): void {
    if (this.slabEnd === this.slabStart) return;
    const region = this.slab.subarray(this.slabStart, this.slabEnd);
    this.slabStart = this.slabEnd;
    this.write(region);
  }

  /** Writes `buffer` after everything batched; `written` runs once the socket no longer needs it. */
  private writeLarge(buffer: Buffer, written?: (buffer: Buffer) => void): void {
    this.flush();
    this.write(buffer, written);
  }

  private write(data: Buffer, written?: (buffer: Buffer) => void): void {
    if (this.socket.destroyed || !this.socket.writable) {
      written?.(data);
      return;
    }
    this.beginTurn();
    // The callback also runs (with an error) if the socket is destroyed first: the bytes are dropped.
    if (written) this.socket.write(data, () => written(data));
    else this.socket.write(data);
  }

  private beginTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    this.socket.cork();
    setImmediate(this.endTurn);
  }

  private reserve(bytes: number): number {
    if (this.slabEnd + bytes > this.slab.length) {
      this.flush();
      this.slab = Buffer.allocUnsafe(SLAB_BYTES);
      this.slabStart = 0;
      this.slabEnd = 0;
    }
    const at = this.slabEnd;
    this.slabEnd += bytes;
    this.beginTurn();
    return at;
  }
}

/** A simple reply header with errno 0 (a successful READ's data follows it). */
function writeSimpleHeader(buffer: Buffer, at: number, cookieHigh: number, cookieLow: number): void {
  buffer.writeUInt32BE(P.NBD_SIMPLE_REPLY_MAGIC, at);
  buffer.writeUInt32BE(0, at + 4);
  buffer.writeUInt32BE(cookieHigh, at + 8);
  buffer.writeUInt32BE(cookieLow, at + 12);
}

function writeChunkHeader(
  buffer: Buffer, at: number, flags: number, type: number, cookieHigh: number, cookieLow: number, length: number,
): void {
  buffer.writeUInt32BE(P.NBD_STRUCTURED_REPLY_MAGIC, at);
  buffer.writeUInt16BE(flags, at + 4);
  buffer.writeUInt16BE(type, at + 6);
  buffer.writeUInt32BE(cookieHigh, at + 8);
  buffer.writeUInt32BE(cookieLow, at + 12);
  buffer.writeUInt32BE(length, at + 16);
}

/** Writes a safe-integer u64 without BigInt. */
export function writeUInt64(buffer: Buffer, at: number, value: number): void {
  const high = Math.floor(value / 0x100000000);
  buffer.writeUInt32BE(high, at);
  buffer.writeUInt32BE(value - high * 0x100000000, at + 4);
}
