// Client side of the handshake: fixed newstyle, STRUCTURED_REPLY when offered,
// GO with INFO_BLOCK_SIZE, and the EXPORT_NAME fallback when GO is unsupported
// (or when the server is not fixed-newstyle).
//
// Invariant: returns only with a complete session (size and flags known);
// otherwise rejects with NBD_REFUSED (the server said no) or NBD_PROTOCOL (it
// broke the protocol); EOF surfaces as the queue's end error.
// Concurrency: sequential, one option at a time.
import { NBD_OPTION_BYTES_MAX, NBD_PAYLOAD_BYTES_MAX } from '../constants.js';
import { BlockcacheError } from '../stdx/errors.js';
import { ByteQueue } from './byte-queue.js';
import * as P from './protocol.js';

export interface ClientSession {
  readonly sizeBytes: number;
  readonly transmissionFlags: number;
  readonly structuredReplies: boolean;
  /** Block size constraints; 1 / 4096 / NBD_PAYLOAD_BYTES_MAX when the server sent none. */
  readonly blockSizeMinimum: number;
  readonly blockSizePreferred: number;
  readonly blockSizeMaximum: number;
}

export interface ClientHandshakeIo {
  readonly queue: ByteQueue;
  write(data: Buffer): void;
}

const OLDSTYLE_MAGIC = 0x00420281861253n;
const DEFAULT_PREFERRED_BYTES = 4096;
/** A block-size minimum above this is not allowed by the spec. */
const BLOCK_SIZE_MINIMUM_MAX = 64 * 1024;

interface OptionReply {
  readonly type: number;
  readonly data: Buffer;
}

class ClientHandshake {
  private sizeBytes = -1;
  private transmissionFlags = 0;
  private structuredReplies = false;
  private blockSizes: [number, number, number] | null = null;

  constructor(private readonly io: ClientHandshakeIo, private readonly exportName: string, private readonly what: string) {}

  async run(): Promise<ClientSession> {
    const greeting = await this.io.queue.readExact(P.NBD_GREETING_BYTES);
    if (greeting.readBigUInt64BE(0) !== P.NBDMAGIC) throw this.protocolError('bad greeting magic');
    const second = greeting.readBigUInt64BE(8);
    if (second === OLDSTYLE_MAGIC) throw this.protocolError('oldstyle servers are not supported');
    if (second !== P.IHAVEOPT) throw this.protocolError('bad newstyle magic');
    const handshakeFlags = greeting.readUInt16BE(16);
    const fixed = (handshakeFlags & P.NBD_FLAG_FIXED_NEWSTYLE) !== 0;
    const noZeroes = (handshakeFlags & P.NBD_FLAG_NO_ZEROES) !== 0;
    const clientFlags = Buffer.alloc(4);
    clientFlags.writeUInt32BE((fixed ? P.NBD_FLAG_C_FIXED_NEWSTYLE : 0) | (noZeroes ? P.NBD_FLAG_C_NO_ZEROES : 0));
    this.io.write(clientFlags);
    if (fixed) {
      this.sendOption(P.NBD_OPT_STRUCTURED_REPLY, Buffer.alloc(0));
      const reply = await this.readReply(P.NBD_OPT_STRUCTURED_REPLY);
      this.structuredReplies = reply.type === P.NBD_REP_ACK;
      if (await this.go()) return this.session();
    }
    await this.exportNameOption(noZeroes);
    return this.session();
  }

  /** Sends GO; true when it succeeded, false when the server does not support it. */
  private async go(): Promise<boolean> {
    const name = Buffer.from(this.exportName, 'utf8');
    const data = Buffer.alloc(4 + name.length + 2 + 2);
    data.writeUInt32BE(name.length, 0);
    name.copy(data, 4);
    data.writeUInt16BE(1, 4 + name.length);
    data.writeUInt16BE(P.NBD_INFO_BLOCK_SIZE, 6 + name.length);
    this.sendOption(P.NBD_OPT_GO, data);
    for (;;) {
      const reply = await this.readReply(P.NBD_OPT_GO);
      if (reply.type === P.NBD_REP_INFO) {
        this.parseInfo(reply.data);
      } else if (reply.type === P.NBD_REP_ACK) {
        if (this.sizeBytes < 0) throw this.protocolError('GO acknowledged without INFO_EXPORT');
        return true;
      } else if (reply.type === P.NBD_REP_ERR_UNSUP) {
        return false;
      } else if ((reply.type & P.NBD_REP_FLAG_ERROR) !== 0) {
        const message = reply.data.toString('utf8');
        const what = reply.type === P.NBD_REP_ERR_UNKNOWN ? `export '${this.exportName}' not found`
          : `GO refused (reply 0x${reply.type.toString(16)})`;
        throw new BlockcacheError('NBD_REFUSED', `${this.what}: ${what}${message ? `: ${message}` : ''}`);
      } else {
        throw this.protocolError(`unexpected reply 0x${reply.type.toString(16)} to GO`);
      }
    }
  }

  private parseInfo(data: Buffer): void {
    if (data.length < 2) throw this.protocolError('short INFO reply');
    const type = data.readUInt16BE(0);
    if (type === P.NBD_INFO_EXPORT) {
      if (data.length !== 12) throw this.protocolError('INFO_EXPORT must be 12 bytes');
      this.setExport(data, 2);
    } else if (type === P.NBD_INFO_BLOCK_SIZE) {
      if (data.length !== 14) throw this.protocolError('INFO_BLOCK_SIZE must be 14 bytes');
      const minimum = data.readUInt32BE(2);
      const preferred = data.readUInt32BE(6);
      const maximum = data.readUInt32BE(10);
      const powerOfTwo = (value: number): boolean => value > 0 && (value & (value - 1)) === 0;
      if (!powerOfTwo(minimum) || minimum > BLOCK_SIZE_MINIMUM_MAX || !powerOfTwo(preferred) || maximum < minimum) {
        throw this.protocolError(`invalid block sizes ${minimum}/${preferred}/${maximum}`);
      }
      this.blockSizes = [minimum, preferred, maximum];
    }
    // Other info types are ignored, as the spec requires.
  }

  private setExport(data: Buffer, at: number): void {
    const size = data.readBigUInt64BE(at);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw this.protocolError(`export size ${size} is too large`);
    this.sizeBytes = Number(size);
    this.transmissionFlags = data.readUInt16BE(at + 8);
    if ((this.transmissionFlags & P.NBD_FLAG_HAS_FLAGS) === 0) this.transmissionFlags = P.NBD_FLAG_HAS_FLAGS;
  }

  private async exportNameOption(noZeroes: boolean): Promise<void> {
    this.sendOption(P.NBD_OPT_EXPORT_NAME, Buffer.from(this.exportName, 'utf8'));
    const length = P.NBD_EXPORT_NAME_REPLY_BYTES + (noZeroes ? 0 : P.NBD_EXPORT_NAME_PADDING_BYTES);
    let reply: Buffer;
    try {
      reply = await this.io.queue.readExact(length);
    } catch {
      throw new BlockcacheError('NBD_REFUSED',
        `${this.what}: the server closed the connection after EXPORT_NAME (export '${this.exportName}' not found?)`);
    }
    this.setExport(reply, 0);
  }

  private sendOption(option: number, data: Buffer): void {
    const header = Buffer.alloc(P.NBD_OPTION_HEADER_BYTES + data.length);
    header.writeBigUInt64BE(P.IHAVEOPT, 0);
    header.writeUInt32BE(option, 8);
    header.writeUInt32BE(data.length, 12);
    data.copy(header, P.NBD_OPTION_HEADER_BYTES);
    this.io.write(header);
  }

  private async readReply(option: number): Promise<OptionReply> {
    const header = await this.io.queue.readExact(P.NBD_OPTION_REPLY_HEADER_BYTES);
    if (header.readBigUInt64BE(0) !== P.NBD_OPTION_REPLY_MAGIC) throw this.protocolError('bad option reply magic');
    if (header.readUInt32BE(8) !== option) throw this.protocolError('option reply for another option');
    const type = header.readUInt32BE(12);
    const length = header.readUInt32BE(16);
    if (length > NBD_OPTION_BYTES_MAX) throw this.protocolError(`option reply of ${length} bytes`);
    return { type, data: await this.io.queue.readExact(length) };
  }

  private session(): ClientSession {
    const [minimum, preferred, maximum] = this.blockSizes ?? [1, DEFAULT_PREFERRED_BYTES, NBD_PAYLOAD_BYTES_MAX];
    return {
      sizeBytes: this.sizeBytes,
      transmissionFlags: this.transmissionFlags,
      structuredReplies: this.structuredReplies,
      blockSizeMinimum: minimum,
      blockSizePreferred: preferred,
      blockSizeMaximum: maximum,
    };
  }

  private protocolError(message: string): BlockcacheError {
    return new BlockcacheError('NBD_PROTOCOL', `${this.what}: ${message}`);
  }
}

export function clientNegotiate(io: ClientHandshakeIo, exportName: string, what: string): Promise<ClientSession> {
  return new ClientHandshake(io, exportName, what).run();
}
