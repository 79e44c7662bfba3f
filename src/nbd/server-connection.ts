// One client connection: handshake, then the transmission phase.
//
// Transmission is a push parser driven by the socket's reads:
//
//   HEADER --(WRITE, accepted)--> PAYLOAD (into one Buffer) --> dispatch --> HEADER
//   HEADER --(WRITE, rejected)--> DRAIN (discard length bytes)  --> error reply --> HEADER
//   HEADER --(other command)----> dispatch (async; replies when done, in any order) --> HEADER
//   HEADER --(DISC / client EOF)--> CLOSING: wait for in-flight requests, flush, end
//   HEADER --(bad magic)---------> destroy
//
// Invariants: a WRITE payload is always consumed in full, even when rejected, so
// the stream never desyncs; cookies are echoed as the two u32 halves read from
// the wire; in-flight requests and bytes (including reply bytes buffered in the
// socket) stay under NBD_INFLIGHT_REQUESTS_MAX / NBD_INFLIGHT_BYTES_MAX plus one
// request: beyond that we stop reading the socket until they drain.
//
// Reads: the socket reads into one reused receive buffer (socket-adoption.ts);
// bytes still unparsed when a read's handler returns are copied out of it, since
// the next read reuses it. While a WRITE payload of at least
// NBD_DIRECT_READ_BYTES_MIN is being received and nothing else is queued, the
// socket reads straight into the payload (no copy). Where Node does not let us
// choose read buffers, 'data' events bring fresh chunks instead.
//
// Concurrency: requests run concurrently against the device; the device orders
// nothing, exactly like a disk. Shutdown: requests parsed after shutdown began get
// ESHUTDOWN; `close()` is called by the server once in-flight requests finished.
import type { Socket } from 'node:net';
import { NBD_DIRECT_READ_BYTES_MIN, NBD_EXTENTS_MAX, NBD_INFLIGHT_BYTES_MAX, NBD_INFLIGHT_REQUESTS_MAX, NBD_RECEIVE_BUFFER_BYTES } from '../constants.js';
import { BlockDevice, Extent, PinnedRead, WriteFlags, ZeroFlags } from '../devices/block-device.js';
import { isBlockcacheError } from '../stdx/errors.js';
import { ByteQueue, connectionClosedError } from './byte-queue.js';
import { errnoFromError } from './errno.js';
import * as P from './protocol.js';
import { ReplyWriter, SLAB_READ_BYTES_MAX, readReplyHeaderBytes } from './reply-writer.js';
import { giveReplyBuffer, takeReplyBuffer } from './reply-buffers.js';
import { validateRequest } from './request-validation.js';
import { ExportConfig, NegotiatedSession, negotiate } from './server-handshake.js';
import { adoptSocket } from './socket-adoption.js';
import { assert } from '../stdx/assert.js';

/** Offsets at or above 2^53 cannot be represented exactly; their high word is ≥ this. */
const OFFSET_HIGH_WORD_UNSAFE = 0x200000;
const TWO_POW_32 = 0x100000000;
/** WRITE payloads up to this size are received into a per-connection scratch buffer (see payloadScratch). */
const PAYLOAD_SCRATCH_BYTES = 128 * 1024;
/** After `close()`, a peer that does not take our last bytes is dropped after this long. */
const CLOSE_LINGER_MS = 2000;

const WRITE_FLAGS: readonly WriteFlags[] = [{ fua: false }, { fua: true }];
/** Indexed by FUA | NO_HOLE<<1 | FAST_ZERO<<2, so no flag object is built per request. */
const ZERO_FLAGS: readonly ZeroFlags[] = Array.from({ length: 8 }, (_, bits) => ({
  fua: (bits & 1) !== 0, noHole: (bits & 2) !== 0, fastZero: (bits & 4) !== 0,
}));

type Phase = 'handshake' | 'transmission' | 'closing' | 'closed';

export class ServerConnection {
  private phase: Phase = 'handshake';
  private session: NegotiatedSession | null = null;
  private readonly queue = new ByteQueue();
  private readonly replies: ReplyWriter;
  private readonly header = Buffer.allocUnsafe(P.NBD_REQUEST_HEADER_BYTES);
  private shuttingDown = false;
  private paused = false;
  private inflightRequests = 0;
  private inflightBytes = 0;
  private idleWaiters: Array<() => void> = [];
  private goneWaiters: Array<() => void> = [];
  private lingerTimer: NodeJS.Timeout | null = null;
  // The request whose WRITE payload is being received or drained.
  private payloadTarget: Buffer | null = null;
  private payloadFilledBytes = 0;
  private payloadDrainBytes = 0;
  private payloadErrno = 0;
  private pendingFlags = 0;
  private pendingCookieHigh = 0;
  private pendingCookieLow = 0;
  private pendingOffsetBytes = 0;
  private readonly deviceReadNow: ((target: Buffer, offsetBytes: number) => boolean) | null;
  private readonly deviceReadPinned: ((offsetBytes: number, lengthBytes: number) => PinnedRead | null) | null;
  /**
   * WRITE payloads up to its size are received here when the device can complete
   * writes synchronously (writeNow copies the data): no allocation per write. A
   * payload writeNow declines is copied out before the asynchronous path runs.
   */
  private readonly payloadScratch: Buffer | null;
  /** Where reads land when they do not go straight into a payload (adopted sockets only). */
  private readonly receiveBuffer = Buffer.allocUnsafe(NBD_RECEIVE_BUFFER_BYTES);
  private readonly socket: Socket;

  /** `accepted` must be paused (a server made with pauseOnConnect), so it has not read yet. */
  constructor(
    accepted: Socket,
    private readonly device: BlockDevice,
    private readonly config: ExportConfig,
    private readonly log: (line: string) => void,
    private readonly onClosed: (connection: ServerConnection) => void,
    ownReadBuffers = true,
  ) {
    const adopted = ownReadBuffers
      ? adoptSocket(accepted, { next: () => this.nextReadBuffer(), onRead: (bytes, buffer) => this.onRead(bytes, buffer) }, true)
      : null;
    const socket = adopted ?? accepted;
    this.socket = socket;
    if (adopted === null) {
      socket.on('data', (chunk: Buffer) => this.onData(chunk));
      socket.resume();
    }
    this.replies = new ReplyWriter(socket);
    this.deviceReadNow = device.readNow !== undefined ? device.readNow.bind(device) : null;
    this.deviceReadPinned = device.readPinned !== undefined ? device.readPinned.bind(device) : null;
    this.payloadScratch = device.writeNow !== undefined ? Buffer.allocUnsafe(PAYLOAD_SCRATCH_BYTES) : null;
    socket.on('end', () => this.onEnd());
    socket.on('drain', () => this.maybeResume());
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') this.log(`nbd: connection error: ${error.message}`);
    });
    socket.on('close', () => this.onSocketClosed());
  }

  get inTransmission(): boolean {
    return this.phase === 'transmission';
  }

  /** Runs the handshake; the transmission phase then runs from data events. */
  async start(): Promise<void> {
    let session: NegotiatedSession | null;
    // A client that never finishes the handshake must not hold a connection slot forever.
    const idle = setTimeout(() => this.queue.cancel(connectionClosedError('nbd handshake timed out')), this.config.handshakeTimeoutMs);
    idle.unref();
    try {
      session = await negotiate({
        queue: this.queue,
        write: (data) => { if (this.socket.writable) this.socket.write(data); },
        isShuttingDown: () => this.shuttingDown,
      }, this.config);
    } catch {
      session = null; // EOF, timeout or cancel during the handshake: quiet cleanup.
    } finally {
      clearTimeout(idle);
    }
    if (this.phase !== 'handshake') return;
    if (session === null) {
      this.phase = 'closing';
      this.socket.end();
      this.lingerThenDestroy();
      return;
    }
    this.session = session;
    this.phase = 'transmission';
    this.pump();
  }

  /** From now on, options get ERR_SHUTDOWN and requests ESHUTDOWN. */
  beginShutdown(): void {
    this.shuttingDown = true;
  }

  /** Resolves once no request is in flight. */
  whenIdle(): Promise<void> {
    if (this.inflightRequests === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Flushes replies and closes the socket (after whenIdle()). */
  close(): void {
    if (this.phase === 'closed') return;
    if (this.phase === 'handshake') this.queue.cancel(connectionClosedError('nbd server shutdown'));
    this.phase = 'closing';
    this.replies.flush();
    this.socket.end();
    this.lingerThenDestroy();
  }

  /** Calls `callback` once the socket has closed. */
  onGone(callback: () => void): void {
    if (this.phase === 'closed') callback();
    else this.goneWaiters.push(callback);
  }

  private lingerThenDestroy(): void {
    if (this.lingerTimer !== null) return;
    // Kept referenced: a paused socket alone does not keep the event loop alive.
    this.lingerTimer = setTimeout(() => this.socket.destroy(), CLOSE_LINGER_MS);
  }

  /** The socket's `data` events (a fresh chunk each) where reads cannot be adopted. */
  private onData(chunk: Buffer): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    this.queue.push(chunk);
    if (this.phase === 'transmission') this.pump();
  }

  /** The buffer the socket's next read goes into: the rest of the WRITE payload being received, or the receive buffer. */
  private nextReadBuffer(): Buffer {
    const target = this.payloadTarget;
    // A payload being received has taken every queued byte (receivePayload), so the read continues it.
    if (target !== null && this.phase === 'transmission' && target.length - this.payloadFilledBytes >= NBD_DIRECT_READ_BYTES_MIN) {
      assert(this.queue.availableBytes === 0, 'a payload being received while bytes are queued');
      return target.subarray(this.payloadFilledBytes);
    }
    return this.receiveBuffer;
  }

  /** An adopted socket's read of `bytes` into `buffer` (what nextReadBuffer gave). */
  private onRead(bytes: number, buffer: Buffer): void {
    if (buffer !== this.receiveBuffer) {
      // Straight into the payload being received: nothing else can have changed it since nextReadBuffer.
      const target = this.payloadTarget;
      assert(target !== null && buffer.buffer === target.buffer && buffer.byteOffset === target.byteOffset + this.payloadFilledBytes &&
        bytes <= target.length - this.payloadFilledBytes, 'a read into a payload that is not being received');
      this.payloadFilledBytes += bytes;
      this.pump();
      return;
    }
    if (this.phase === 'closing' || this.phase === 'closed') return;
    this.queue.push(buffer.subarray(0, bytes));
    if (this.phase === 'transmission') this.pump();
    this.queue.ownBytesIn(this.receiveBuffer); // the next read reuses the receive buffer
  }

  private onEnd(): void {
    this.queue.end(connectionClosedError('nbd client'));
    this.abandonPayload();
    if (this.phase !== 'transmission') return;
    this.phase = 'closing';
    void this.whenIdle().then(() => this.close());
  }

  /** The client went away mid-WRITE: that request will never run. */
  private abandonPayload(): void {
    const target = this.payloadTarget;
    this.payloadDrainBytes = 0;
    if (target === null) return;
    this.payloadTarget = null;
    this.release(target.length);
  }

  private onSocketClosed(): void {
    this.abandonPayload();
    this.phase = 'closed';
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    this.queue.end(connectionClosedError('nbd client'));
    this.onClosed(this);
    const waiters = this.goneWaiters;
    this.goneWaiters = [];
    for (const callback of waiters) callback();
  }

  private overLimits(): boolean {
    return this.inflightRequests >= NBD_INFLIGHT_REQUESTS_MAX ||
      this.inflightBytes + this.socket.writableLength >= NBD_INFLIGHT_BYTES_MAX;
  }

  private maybeResume(): void {
    if (!this.paused || this.overLimits() || this.phase !== 'transmission') return;
    this.paused = false;
    this.socket.resume();
    this.pump();
  }

  /** Parses as many requests as the queue and the limits allow. */
  private pump(): void {
    while (this.phase === 'transmission') {
      if (this.payloadTarget !== null || this.payloadDrainBytes > 0) {
        if (!this.receivePayload()) return;
        continue;
      }
      if (this.overLimits()) {
        if (!this.paused) {
          this.paused = true;
          this.socket.pause();
        }
        return;
      }
      if (this.queue.availableBytes < P.NBD_REQUEST_HEADER_BYTES) return;
      this.queue.copyOut(this.header, 0, P.NBD_REQUEST_HEADER_BYTES);
      this.parseHeader();
    }
  }

  private parseHeader(): void {
    const header = this.header;
    if (header.readUInt32BE(0) !== P.NBD_REQUEST_MAGIC) {
      this.log('nbd: bad request magic, disconnecting');
      this.phase = 'closing';
      this.socket.destroy();
      return;
    }
    const flags = header.readUInt16BE(4);
    const type = header.readUInt16BE(6);
    const cookieHigh = header.readUInt32BE(8);
    const cookieLow = header.readUInt32BE(12);
    const offsetHigh = header.readUInt32BE(16);
    const offsetBytes = offsetHigh < OFFSET_HIGH_WORD_UNSAFE
      ? offsetHigh * TWO_POW_32 + header.readUInt32BE(20) : Number.POSITIVE_INFINITY;
    const lengthBytes = header.readUInt32BE(24);
    if (type === P.NBD_CMD_DISC) {
      this.onEnd();
      this.socket.pause();
      return;
    }
    const session = this.session!;
    const errno = this.shuttingDown ? P.NBD_ESHUTDOWN : validateRequest({
      sizeBytes: this.config.sizeBytes,
      transmissionFlags: session.transmissionFlags,
      baseAllocationContextId: session.baseAllocationContextId,
    }, type, flags, offsetBytes, lengthBytes);
    if (type === P.NBD_CMD_WRITE) {
      this.beginPayload(errno, flags, cookieHigh, cookieLow, offsetBytes, lengthBytes);
    } else if (errno !== 0) {
      this.replyError(type, cookieHigh, cookieLow, errno);
    } else if (type === P.NBD_CMD_READ && lengthBytes > 0 && this.readNow(cookieHigh, cookieLow, offsetBytes, lengthBytes)) {
      // answered from memory, synchronously
    } else {
      this.admit(type === P.NBD_CMD_READ ? lengthBytes : 0);
      void this.execute(type, flags, cookieHigh, cookieLow, offsetBytes, lengthBytes, null);
    }
  }

  private beginPayload(errno: number, flags: number, cookieHigh: number, cookieLow: number, offsetBytes: number, lengthBytes: number): void {
    this.pendingFlags = flags;
    this.pendingCookieHigh = cookieHigh;
    this.pendingCookieLow = cookieLow;
    this.pendingOffsetBytes = offsetBytes;
    this.payloadErrno = errno;
    if (errno !== 0) {
      this.payloadDrainBytes = lengthBytes;
      if (lengthBytes === 0) this.replyError(P.NBD_CMD_WRITE, cookieHigh, cookieLow, errno);
      return;
    }
    this.admit(lengthBytes);
    this.payloadTarget = this.payloadScratch !== null && lengthBytes <= PAYLOAD_SCRATCH_BYTES
      ? this.payloadScratch.subarray(0, lengthBytes) : takeReplyBuffer(lengthBytes);
    this.payloadFilledBytes = 0;
  }

  /** Moves queued bytes into the WRITE payload (or drains them); true when it completed. */
  private receivePayload(): boolean {
    const target = this.payloadTarget;
    if (target === null) {
      this.payloadDrainBytes -= this.queue.skip(this.payloadDrainBytes);
      if (this.payloadDrainBytes > 0) return false;
      this.replyError(P.NBD_CMD_WRITE, this.pendingCookieHigh, this.pendingCookieLow, this.payloadErrno);
      return true;
    }
    const take = Math.min(this.queue.availableBytes, target.length - this.payloadFilledBytes);
    this.queue.copyOut(target, this.payloadFilledBytes, take);
    this.payloadFilledBytes += take;
    if (this.payloadFilledBytes < target.length) return false;
    this.payloadTarget = null;
    if (this.device.writeNow !== undefined &&
      this.device.writeNow(target, this.pendingOffsetBytes, WRITE_FLAGS[this.pendingFlags & P.NBD_CMD_FLAG_FUA])) {
      this.replies.simple(this.pendingCookieHigh, this.pendingCookieLow, 0);
      this.release(target.length);
      if (target.buffer !== this.payloadScratch?.buffer) giveReplyBuffer(target); // copied synchronously: nobody holds it
      return true;
    }
    // The asynchronous path keeps the payload until the write completes: never the scratch buffer.
    const payload = target.buffer === this.payloadScratch?.buffer ? Buffer.from(target) : target;
    void this.execute(P.NBD_CMD_WRITE, this.pendingFlags, this.pendingCookieHigh, this.pendingCookieLow,
      this.pendingOffsetBytes, target.length, payload);
    return true;
  }

  private admit(bytes: number): void {
    this.inflightRequests += 1;
    this.inflightBytes += bytes;
  }

  private release(bytes: number): void {
    this.inflightRequests -= 1;
    this.inflightBytes -= bytes;
    if (this.inflightRequests === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
    this.maybeResume();
  }

  private replyError(type: number, cookieHigh: number, cookieLow: number, errno: number): void {
    const structured = this.session!.structuredReplies && (type === P.NBD_CMD_READ || type === P.NBD_CMD_BLOCK_STATUS);
    if (structured) this.replies.structuredError(cookieHigh, cookieLow, errno);
    else this.replies.simple(cookieHigh, cookieLow, errno);
  }

  /** Runs one validated request against the device and replies. */
  private async execute(
    type: number, flags: number, cookieHigh: number, cookieLow: number,
    offsetBytes: number, lengthBytes: number, payload: Buffer | null,
  ): Promise<void> {
    const admittedBytes = type === P.NBD_CMD_READ || type === P.NBD_CMD_WRITE ? lengthBytes : 0;
    try {
      if (type === P.NBD_CMD_READ) {
        await this.executeRead(cookieHigh, cookieLow, offsetBytes, lengthBytes);
      } else if (type === P.NBD_CMD_BLOCK_STATUS) {
        await this.executeBlockStatus(flags, cookieHigh, cookieLow, offsetBytes, lengthBytes);
      } else {
        await this.executeNoData(type, flags, offsetBytes, lengthBytes, payload);
        this.replies.simple(cookieHigh, cookieLow, 0);
      }
    } catch (error) {
      if (!isBlockcacheError(error)) this.log(`nbd: ${P.nbdCommandName(type)} failed: ${String(error)}`);
      const fastZero = type === P.NBD_CMD_WRITE_ZEROES && (flags & P.NBD_CMD_FLAG_FAST_ZERO) !== 0;
      this.replyError(type, cookieHigh, cookieLow, errnoFromError(error, fastZero));
    } finally {
      this.release(admittedBytes);
    }
  }

  /**
   * The device's synchronous read paths (a RAM tier hit): replies at once; false
   * if it declined. Reads too large for the slab are sent as lent views (no copy).
   */
  private readNow(cookieHigh: number, cookieLow: number, offsetBytes: number, lengthBytes: number): boolean {
    const structured = this.session!.structuredReplies;
    if (lengthBytes > SLAB_READ_BYTES_MAX && this.deviceReadPinned !== null) {
      const pinned = this.deviceReadPinned(offsetBytes, lengthBytes);
      if (pinned !== null) {
        this.replies.readViews(structured, cookieHigh, cookieLow, offsetBytes, lengthBytes, pinned.views, pinned.release);
        return true;
      }
    }
    if (this.deviceReadNow === null) return false;
    return this.replies.readNow(structured, cookieHigh, cookieLow, offsetBytes, lengthBytes, this.deviceReadNow);
  }

  private async executeRead(cookieHigh: number, cookieLow: number, offsetBytes: number, lengthBytes: number): Promise<void> {
    const structured = this.session!.structuredReplies;
    if (lengthBytes === 0) {
      if (structured) this.replies.structuredNone(cookieHigh, cookieLow);
      else this.replies.simple(cookieHigh, cookieLow, 0);
      return;
    }
    const headerBytes = readReplyHeaderBytes(structured);
    // If the read fails the buffer is dropped, never reused: parts of the read may still be in flight.
    const buffer = takeReplyBuffer(headerBytes + lengthBytes);
    await this.device.read(buffer.subarray(headerBytes), offsetBytes);
    this.replies.readData(buffer, structured, cookieHigh, cookieLow, offsetBytes);
  }

  private async executeNoData(type: number, flags: number, offsetBytes: number, lengthBytes: number, payload: Buffer | null): Promise<void> {
    const fua = flags & P.NBD_CMD_FLAG_FUA;
    switch (type) {
      case P.NBD_CMD_WRITE:
        if (lengthBytes > 0) {
          await this.device.write(payload!, offsetBytes, WRITE_FLAGS[fua]);
          // Reused only after a write that succeeded: a failed one may still have parts in flight reading it.
          giveReplyBuffer(payload!);
        }
        return;
      case P.NBD_CMD_FLUSH:
        return this.device.flush();
      case P.NBD_CMD_TRIM:
        if (lengthBytes > 0) await this.device.trim(offsetBytes, lengthBytes, WRITE_FLAGS[fua]);
        return;
      case P.NBD_CMD_WRITE_ZEROES: {
        const bits = fua | ((flags & P.NBD_CMD_FLAG_NO_HOLE) !== 0 ? 2 : 0) | ((flags & P.NBD_CMD_FLAG_FAST_ZERO) !== 0 ? 4 : 0);
        if (lengthBytes > 0) await this.device.writeZeroes(offsetBytes, lengthBytes, ZERO_FLAGS[bits]);
        return;
      }
      case P.NBD_CMD_CACHE:
        if (lengthBytes > 0 && this.device.cache !== undefined) await this.device.cache(offsetBytes, lengthBytes);
        return;
      default:
        throw new Error(`unexpected command ${type} after validation`);
    }
  }

  private async executeBlockStatus(flags: number, cookieHigh: number, cookieLow: number, offsetBytes: number, lengthBytes: number): Promise<void> {
    const extents: Extent[] = this.device.blockStatus !== undefined
      ? await this.device.blockStatus(offsetBytes, lengthBytes)
      : [{ lengthBytes, flags: 0 }];
    const countMax = (flags & P.NBD_CMD_FLAG_REQ_ONE) !== 0 ? 1 : NBD_EXTENTS_MAX;
    // Compact in place: drop empty extents, clamp the total to the request.
    let count = 0;
    let coveredBytes = 0;
    for (const extent of extents) {
      if (count >= countMax || coveredBytes >= lengthBytes) break;
      if (!(extent.lengthBytes > 0)) continue;
      const clamped = Math.min(extent.lengthBytes, lengthBytes - coveredBytes);
      extents[count] = { lengthBytes: clamped, flags: extent.flags };
      coveredBytes += clamped;
      count += 1;
    }
    if (count === 0) {
      extents[0] = { lengthBytes, flags: 0 };
      count = 1;
    }
    this.replies.blockStatus(cookieHigh, cookieLow, this.session!.baseAllocationContextId, extents, count);
  }
}
