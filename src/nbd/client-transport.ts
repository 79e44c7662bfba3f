// The transmission phase of the NBD client: sends requests, matches replies by
// cookie, and streams READ data (simple replies and OFFSET_DATA/OFFSET_HOLE
// chunks) straight into the caller's target buffer.
//
// Reply parser states:
//   HEADER --simple, READ ok--> SIMPLE_DATA (copy into target) --> HEADER
//   HEADER --OFFSET_DATA------> DATA_OFFSET (8 bytes) --> CHUNK_DATA (copy into target) --> HEADER
//   HEADER --other chunk------> CHUNK_PAYLOAD (whole payload, bounded) --> HEADER
//
// The owner reads the socket into a reused receive buffer and pushes what
// arrived into the queue; while READ data of at least NBD_DIRECT_READ_BYTES_MIN
// is still to come and nothing else is queued, it reads straight into the
// caller's target instead (directTarget, onDirectData): no copy.
//
// Invariants: at most NBD_CLIENT_INFLIGHT_MAX requests are on the wire; more
// callers wait in FIFO order. Any protocol violation or EOF fails every pending
// and waiting request with a clear error, and every later request at once:
// nothing ever hangs on a dead connection.
// Concurrency: single-threaded; one transport per socket.
import type { Socket } from 'node:net';
import { KiB, NBD_CLIENT_INFLIGHT_MAX } from '../constants.js';
import { assert } from '../stdx/assert.js';
import { BlockcacheError } from '../stdx/errors.js';
import { ByteQueue } from './byte-queue.js';
import { errorFromErrno } from './errno.js';
import * as P from './protocol.js';
import { writeUInt64 } from './reply-writer.js';

interface Pending {
  readonly type: number;
  readonly target: Buffer | null;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  errno: number;
  message: string;
  resolve(): void;
  reject(error: Error): void;
}

type ParserState = 'header' | 'simple-data' | 'data-offset' | 'chunk-data' | 'chunk-payload';

/** Non-data chunks (errors, holes) are small; anything above this is a broken server. */
const CHUNK_PAYLOAD_BYTES_MAX = 64 * KiB;
const COOKIE_LIMIT = 0x100000000;

export class ClientTransport {
  private readonly pending = new Map<number, Pending>();
  private readonly waiters: Array<() => void> = [];
  private nextCookie = 1;
  private failure: BlockcacheError | null = null;
  private state: ParserState = 'header';
  private readonly header = Buffer.allocUnsafe(P.NBD_STRUCTURED_REPLY_HEADER_BYTES);
  private current: Pending | null = null;
  private currentCookie = 0;
  private currentFlags = 0;
  private currentType = 0;
  private remainingBytes = 0;
  private targetAt = 0;

  constructor(
    private readonly socket: Socket,
    private readonly queue: ByteQueue,
    private readonly structuredReplies: boolean,
    private readonly what: string,
  ) {}

  get inflightCount(): number {
    return this.pending.size;
  }

  /** Called by the owner for every received chunk after the handshake. */
  onData(): void {
    try {
      while (this.failure === null && this.step()) { /* keep parsing */ }
    } catch (error) {
      const failure = error instanceof BlockcacheError ? error
        : new BlockcacheError('NBD_PROTOCOL', `${this.what}: ${String(error)}`);
      this.fail(failure);
      this.socket.destroy();
    }
  }

  /** Fails everything pending and waiting, and every later request. */
  fail(error: BlockcacheError): void {
    if (this.failure === null) this.failure = error;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const request of pending) request.reject(this.failure);
    const waiters = this.waiters.splice(0);
    for (const wake of waiters) wake();
  }

  get failed(): BlockcacheError | null {
    return this.failure;
  }

  /** Sends one request and resolves when its reply (all chunks) arrived. */
  async request(type: number, flags: number, offsetBytes: number, lengthBytes: number, data: Buffer | null, target: Buffer | null): Promise<void> {
    while (this.failure === null && this.pending.size >= NBD_CLIENT_INFLIGHT_MAX) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.failure !== null) throw this.failure;
    const cookie = this.allocateCookie();
    const header = Buffer.allocUnsafe(P.NBD_REQUEST_HEADER_BYTES);
    header.writeUInt32BE(P.NBD_REQUEST_MAGIC, 0);
    header.writeUInt16BE(flags, 4);
    header.writeUInt16BE(type, 6);
    header.writeUInt32BE(0, 8);
    header.writeUInt32BE(cookie, 12);
    writeUInt64(header, 16, offsetBytes);
    header.writeUInt32BE(lengthBytes, 24);
    const done = new Promise<void>((resolve, reject) => {
      this.pending.set(cookie, { type, target, offsetBytes, lengthBytes, errno: 0, message: '', resolve, reject });
    });
    if (data !== null && data.length > 0) {
      this.socket.cork();
      this.socket.write(header);
      this.socket.write(data);
      this.socket.uncork();
    } else {
      this.socket.write(header);
    }
    try {
      await done;
    } finally {
      const wake = this.waiters.shift();
      wake?.();
    }
  }

  /** Sends DISC (no reply is expected). */
  disconnect(): void {
    const header = Buffer.alloc(P.NBD_REQUEST_HEADER_BYTES);
    header.writeUInt32BE(P.NBD_REQUEST_MAGIC, 0);
    header.writeUInt16BE(P.NBD_CMD_DISC, 6);
    if (this.socket.writable) this.socket.write(header);
  }

  private allocateCookie(): number {
    let cookie = this.nextCookie;
    while (this.pending.has(cookie)) cookie = (cookie + 1) % COOKIE_LIMIT;
    this.nextCookie = (cookie + 1) % COOKIE_LIMIT;
    return cookie;
  }

  /** Advances the parser by one step; false when more bytes are needed. */
  private step(): boolean {
    switch (this.state) {
      case 'header': return this.parseHeader();
      case 'simple-data':
      case 'chunk-data': return this.copyData();
      case 'data-offset': return this.parseDataOffset();
      case 'chunk-payload': return this.parseChunkPayload();
    }
  }

  private parseHeader(): boolean {
    if (this.queue.availableBytes < 4) return false;
    this.queue.peek(this.header, 4);
    const magic = this.header.readUInt32BE(0);
    const headerBytes = magic === P.NBD_SIMPLE_REPLY_MAGIC ? P.NBD_SIMPLE_REPLY_HEADER_BYTES
      : magic === P.NBD_STRUCTURED_REPLY_MAGIC && this.structuredReplies ? P.NBD_STRUCTURED_REPLY_HEADER_BYTES : 0;
    if (headerBytes === 0) throw this.protocolError(`bad reply magic 0x${magic.toString(16)}`);
    if (this.queue.availableBytes < headerBytes) return false;
    this.queue.copyOut(this.header, 0, headerBytes);
    return magic === P.NBD_SIMPLE_REPLY_MAGIC ? this.onSimpleReply() : this.onChunkHeader();
  }

  private takePending(cookieHigh: number, cookie: number): Pending {
    const request = cookieHigh === 0 ? this.pending.get(cookie) : undefined;
    if (request === undefined) throw this.protocolError(`reply for unknown cookie ${cookieHigh}:${cookie}`);
    return request;
  }

  private onSimpleReply(): boolean {
    const errno = this.header.readUInt32BE(4);
    const cookie = this.header.readUInt32BE(12);
    const request = this.takePending(this.header.readUInt32BE(8), cookie);
    this.currentCookie = cookie;
    this.current = request;
    if (errno === 0 && request.type === P.NBD_CMD_READ && request.lengthBytes > 0) {
      assert(request.target !== null);
      this.state = 'simple-data';
      this.remainingBytes = request.lengthBytes;
      this.targetAt = 0;
      return true;
    }
    request.errno = errno;
    this.finish();
    return true;
  }

  private onChunkHeader(): boolean {
    this.currentFlags = this.header.readUInt16BE(4);
    this.currentType = this.header.readUInt16BE(6);
    const cookie = this.header.readUInt32BE(12);
    this.current = this.takePending(this.header.readUInt32BE(8), cookie);
    this.currentCookie = cookie;
    this.remainingBytes = this.header.readUInt32BE(16);
    if (this.currentType === P.NBD_REPLY_TYPE_OFFSET_DATA) {
      if (this.current.type !== P.NBD_CMD_READ || this.remainingBytes < 9) throw this.protocolError('bad OFFSET_DATA chunk');
      this.state = 'data-offset';
      return true;
    }
    if (this.remainingBytes > CHUNK_PAYLOAD_BYTES_MAX) throw this.protocolError(`chunk payload of ${this.remainingBytes} bytes`);
    this.state = 'chunk-payload';
    return true;
  }

  private parseDataOffset(): boolean {
    if (this.queue.availableBytes < 8) return false;
    this.queue.copyOut(this.header, 0, 8);
    const request = this.current!;
    const offsetBytes = this.header.readUInt32BE(0) * 0x100000000 + this.header.readUInt32BE(4);
    const dataBytes = this.remainingBytes - 8;
    const at = offsetBytes - request.offsetBytes;
    if (at < 0 || at + dataBytes > request.lengthBytes) throw this.protocolError('OFFSET_DATA outside the request');
    this.targetAt = at;
    this.remainingBytes = dataBytes;
    this.state = 'chunk-data';
    return true;
  }

  private copyData(): boolean {
    const take = Math.min(this.queue.availableBytes, this.remainingBytes);
    if (take === 0) return false;
    this.queue.copyOut(this.current!.target!, this.targetAt, take);
    return this.dataArrived(take);
  }

  /** `bytes` of the current READ data are in the target; true when that data is complete. */
  private dataArrived(bytes: number): boolean {
    this.targetAt += bytes;
    this.remainingBytes -= bytes;
    if (this.remainingBytes > 0) return false;
    if (this.state === 'simple-data') this.finish();
    else this.endChunk();
    return true;
  }

  /**
   * Where the next socket read may go straight: the rest of the READ data being received,
   * when at least `minBytes` of it is still to come and nothing is queued before it; else null.
   */
  directTarget(minBytes: number): Buffer | null {
    if (this.failure !== null || (this.state !== 'simple-data' && this.state !== 'chunk-data')) return null;
    if (this.remainingBytes < minBytes || this.queue.availableBytes !== 0) return null;
    return this.current!.target!.subarray(this.targetAt, this.targetAt + this.remainingBytes);
  }

  /** A socket read put `bytes` into the buffer directTarget gave (nothing else ran in between). */
  onDirectData(bytes: number): void {
    assert(bytes <= this.remainingBytes && (this.state === 'simple-data' || this.state === 'chunk-data'), 'a direct read past the READ data');
    this.dataArrived(bytes);
    this.onData();
  }

  private parseChunkPayload(): boolean {
    const length = this.remainingBytes;
    if (this.queue.availableBytes < length) return false;
    const payload = Buffer.allocUnsafe(length);
    this.queue.copyOut(payload, 0, length);
    const request = this.current!;
    const type = this.currentType;
    if (type === P.NBD_REPLY_TYPE_NONE) {
      if (length !== 0) throw this.protocolError('NONE chunk with a payload');
    } else if (type === P.NBD_REPLY_TYPE_OFFSET_HOLE) {
      if (length !== 12 || request.type !== P.NBD_CMD_READ) throw this.protocolError('bad OFFSET_HOLE chunk');
      const at = payload.readUInt32BE(0) * 0x100000000 + payload.readUInt32BE(4) - request.offsetBytes;
      const holeBytes = payload.readUInt32BE(8);
      if (at < 0 || holeBytes === 0 || at + holeBytes > request.lengthBytes) throw this.protocolError('OFFSET_HOLE outside the request');
      request.target!.fill(0, at, at + holeBytes);
    } else if ((type & P.NBD_REPLY_TYPE_ERROR_BIT) !== 0) {
      if (length < 6) throw this.protocolError('short error chunk');
      const messageBytes = Math.min(payload.readUInt16BE(4), length - 6);
      request.errno = payload.readUInt32BE(0) || P.NBD_EINVAL;
      request.message = payload.toString('utf8', 6, 6 + messageBytes);
    } else if (type !== P.NBD_REPLY_TYPE_BLOCK_STATUS) {
      throw this.protocolError(`unknown chunk type ${type}`);
    }
    this.endChunk();
    return true;
  }

  private endChunk(): void {
    this.state = 'header';
    if ((this.currentFlags & P.NBD_REPLY_FLAG_DONE) !== 0) this.finish();
  }

  private finish(): void {
    const request = this.current!;
    this.current = null;
    this.state = 'header';
    this.pending.delete(this.currentCookie);
    if (request.errno === 0) request.resolve();
    else request.reject(errorFromErrno(request.errno, `${this.what}: ${P.nbdCommandName(request.type)}`, request.message));
  }

  private protocolError(message: string): BlockcacheError {
    return new BlockcacheError('NBD_PROTOCOL', `${this.what}: protocol error: ${message}`);
  }
}
