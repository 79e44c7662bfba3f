// A raw NBD wire client for malformed-input checks (nbd-conformance.md §F):
// libnbd refuses to send broken traffic, so these bytes are built by hand.
// Every read has a timeout; `close()` always destroys the socket.
import * as net from 'node:net';
import { parseNbdUri } from '../../src/nbd/uri.js';
import * as P from '../../src/nbd/protocol.js';

const READ_TIMEOUT_MS = 5000;

export interface OptionReply { option: number; type: number; data: Buffer }
export interface Chunk { flags: number; type: number; cookie: bigint; data: Buffer }
export interface SimpleReply { error: number; cookie: bigint }

export class RawNbd {
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  private ended = false;
  private wake: (() => void) | null = null;
  handshakeFlags = 0;
  exportName: string;

  private constructor(private readonly socket: net.Socket, exportName: string) {
    this.exportName = exportName;
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.bufferedBytes += chunk.length;
      this.wake?.();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
  }

  static async connect(uri: string): Promise<RawNbd> {
    const address = parseNbdUri(uri);
    const socket = address.transport === 'unix' ? net.connect({ path: address.socketPath }) : net.connect({ host: address.host, port: address.port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawNbd(socket, address.exportName);
  }

  write(data: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  close(): void {
    this.socket.destroy();
  }

  /** Reads exactly `length` bytes or throws on EOF / timeout. */
  async read(length: number, timeoutMs = READ_TIMEOUT_MS): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.bufferedBytes < length) {
      if (this.ended) throw new Error(`connection closed by server (wanted ${length} bytes, had ${this.bufferedBytes})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${length} bytes`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => { clearTimeout(timer); resolve(); };
      });
      this.wake = null;
    }
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const result = Buffer.from(all.subarray(0, length));
    const rest = all.subarray(length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.bufferedBytes = rest.length;
    return result;
  }

  /** True if the server closes within `timeoutMs` (any bytes it sends first are discarded). */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => { clearTimeout(timer); resolve(); };
      });
      this.wake = null;
      this.chunks = [];
      this.bufferedBytes = 0;
    }
    return true;
  }

  /** Nothing more arrives within `ms` (used after DISC-less commands that must not reply). */
  get pendingBytes(): number {
    return this.bufferedBytes;
  }

  async greeting(clientFlags = P.NBD_FLAG_C_FIXED_NEWSTYLE | P.NBD_FLAG_C_NO_ZEROES): Promise<void> {
    const greeting = await this.read(18);
    if (greeting.readBigUInt64BE(0) !== P.NBDMAGIC || greeting.readBigUInt64BE(8) !== P.IHAVEOPT) throw new Error('bad greeting');
    this.handshakeFlags = greeting.readUInt16BE(16);
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(clientFlags);
    this.write(flags);
  }

  sendOption(option: number, data: Buffer = Buffer.alloc(0), declaredLength = data.length, magic = P.IHAVEOPT): void {
    const header = Buffer.alloc(16);
    header.writeBigUInt64BE(magic, 0);
    header.writeUInt32BE(option, 8);
    header.writeUInt32BE(declaredLength, 12);
    this.write(Buffer.concat([header, data]));
  }

  async readOptionReply(): Promise<OptionReply> {
    const header = await this.read(20);
    if (header.readBigUInt64BE(0) !== P.NBD_OPTION_REPLY_MAGIC) throw new Error('bad option reply magic');
    const length = header.readUInt32BE(16);
    return { option: header.readUInt32BE(8), type: header.readUInt32BE(12), data: await this.read(length) };
  }

  /** Reads replies up to and including the final one (ACK or error). */
  async readOptionReplies(): Promise<OptionReply[]> {
    const replies: OptionReply[] = [];
    for (;;) {
      const reply = await this.readOptionReply();
      replies.push(reply);
      if (reply.type === P.NBD_REP_ACK || (reply.type & P.NBD_REP_FLAG_ERROR) !== 0) return replies;
    }
  }

  async option(option: number, data: Buffer = Buffer.alloc(0)): Promise<OptionReply[]> {
    this.sendOption(option, data);
    return this.readOptionReplies();
  }

  static infoPayload(name: string, infos: number[]): Buffer {
    const nameBytes = Buffer.from(name);
    const data = Buffer.alloc(4 + nameBytes.length + 2 + 2 * infos.length);
    data.writeUInt32BE(nameBytes.length, 0);
    nameBytes.copy(data, 4);
    data.writeUInt16BE(infos.length, 4 + nameBytes.length);
    infos.forEach((info, i) => data.writeUInt16BE(info, 6 + nameBytes.length + 2 * i));
    return data;
  }

  static metaPayload(name: string, queries: string[]): Buffer {
    const parts = [Buffer.alloc(4), Buffer.from(name), Buffer.alloc(4)];
    parts[0]!.writeUInt32BE(Buffer.byteLength(name));
    parts[2]!.writeUInt32BE(queries.length);
    for (const query of queries) {
      const length = Buffer.alloc(4);
      length.writeUInt32BE(Buffer.byteLength(query));
      parts.push(length, Buffer.from(query));
    }
    return Buffer.concat(parts);
  }

  /** Full handshake to transmission: optional SR (+ base:allocation), then GO. Returns size and flags. */
  async open(options: { structured?: boolean; baseAllocation?: boolean; infos?: number[] } = {}): Promise<{ size: bigint; flags: number; replies: OptionReply[] }> {
    await this.greeting();
    if (options.structured ?? true) {
      const [sr] = await this.option(P.NBD_OPT_STRUCTURED_REPLY);
      if (sr?.type !== P.NBD_REP_ACK) throw new Error('SR refused');
      if (options.baseAllocation === true) await this.option(P.NBD_OPT_SET_META_CONTEXT, RawNbd.metaPayload(this.exportName, ['base:allocation']));
    }
    const replies = await this.option(P.NBD_OPT_GO, RawNbd.infoPayload(this.exportName, options.infos ?? []));
    const last = replies[replies.length - 1]!;
    if (last.type !== P.NBD_REP_ACK) throw new Error(`GO failed: 0x${last.type.toString(16)}`);
    const exportInfo = replies.find((reply) => reply.type === P.NBD_REP_INFO && reply.data.readUInt16BE(0) === P.NBD_INFO_EXPORT);
    if (exportInfo === undefined) throw new Error('no INFO_EXPORT');
    return { size: exportInfo.data.readBigUInt64BE(2), flags: exportInfo.data.readUInt16BE(10), replies };
  }

  request(type: number, flags: number, cookie: bigint, offset: bigint, length: number, payload?: Buffer, magic = P.NBD_REQUEST_MAGIC): void {
    const header = Buffer.alloc(28);
    header.writeUInt32BE(magic, 0);
    header.writeUInt16BE(flags, 4);
    header.writeUInt16BE(type, 6);
    header.writeBigUInt64BE(cookie, 8);
    header.writeBigUInt64BE(offset, 16);
    header.writeUInt32BE(length, 24);
    this.write(payload === undefined ? header : Buffer.concat([header, payload]));
  }

  async readSimpleReply(): Promise<SimpleReply> {
    const header = await this.read(16);
    if (header.readUInt32BE(0) !== P.NBD_SIMPLE_REPLY_MAGIC) throw new Error(`expected a simple reply, magic 0x${header.readUInt32BE(0).toString(16)}`);
    return { error: header.readUInt32BE(4), cookie: header.readBigUInt64BE(8) };
  }

  /** Reads one reply of either kind: a simple reply (no data) or one chunk. */
  async readAnyReply(): Promise<{ simple: SimpleReply } | { chunk: Chunk }> {
    const magicBytes = await this.read(4);
    const magic = magicBytes.readUInt32BE(0);
    if (magic === P.NBD_SIMPLE_REPLY_MAGIC) {
      const rest = await this.read(12);
      return { simple: { error: rest.readUInt32BE(0), cookie: rest.readBigUInt64BE(4) } };
    }
    if (magic !== P.NBD_STRUCTURED_REPLY_MAGIC) throw new Error(`bad reply magic 0x${magic.toString(16)}`);
    const rest = await this.read(16);
    return { chunk: { flags: rest.readUInt16BE(0), type: rest.readUInt16BE(2), cookie: rest.readBigUInt64BE(4), data: await this.read(rest.readUInt32BE(12)) } };
  }

  /** Reads chunks of one structured reply until DONE. */
  async readChunks(): Promise<Chunk[]> {
    const chunks: Chunk[] = [];
    for (;;) {
      const reply = await this.readAnyReply();
      if ('simple' in reply) throw new Error('expected a structured reply, got a simple reply');
      chunks.push(reply.chunk);
      if ((reply.chunk.flags & P.NBD_REPLY_FLAG_DONE) !== 0) return chunks;
    }
  }

  /** The errno of a reply of any kind (0 on success; chunk data is consumed). */
  async readStatus(): Promise<{ cookie: bigint; error: number }> {
    const reply = await this.readAnyReply();
    if ('simple' in reply) return reply.simple;
    let chunk = reply.chunk;
    let error = 0;
    for (;;) {
      if ((chunk.type & P.NBD_REPLY_TYPE_ERROR_BIT) !== 0) error = chunk.data.readUInt32BE(0);
      if ((chunk.flags & P.NBD_REPLY_FLAG_DONE) !== 0) return { cookie: chunk.cookie, error };
      const next = await this.readAnyReply();
      if ('simple' in next) throw new Error('simple reply inside a structured reply');
      chunk = next.chunk;
    }
  }
}

/** Opens a fresh connection, reads 512 bytes at 0, and closes: proves the server is alive. */
export async function assertServerAlive(uri: string): Promise<void> {
  const raw = await RawNbd.connect(uri);
  try {
    await raw.open();
    raw.request(P.NBD_CMD_READ, 0, 7n, 0n, 512);
    const chunks = await raw.readChunks();
    const data = chunks.find((chunk) => chunk.type === P.NBD_REPLY_TYPE_OFFSET_DATA || chunk.type === P.NBD_REPLY_TYPE_OFFSET_HOLE);
    if (data === undefined) throw new Error('server alive check: no data chunk');
  } finally {
    raw.close();
  }
}
