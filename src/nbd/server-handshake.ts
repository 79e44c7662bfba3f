// Server side of the fixed-newstyle handshake (option haggling).
//
// Reads options strictly one at a time (the client waits for the final reply of
// each), answers them, and returns the negotiated session when GO or EXPORT_NAME
// succeeds, or null when the connection must close (ABORT, bad client flags, bad
// option magic, EXPORT_NAME of an unknown export, absurd option length).
//
// Invariants: never reads past an option's declared length; never allocates for
// an option longer than NBD_OPTION_BYTES_MAX (it refuses and closes instead);
// INFO and GO report the same size and flags; a failed SET_META_CONTEXT clears
// the selection.
//
// Concurrency: one handshake per connection, sequential by construction.
import { NBD_OPTION_BYTES_MAX, NBD_PAYLOAD_BYTES_MAX, NBD_PREFERRED_BLOCK_BYTES, NBD_STRING_BYTES_MAX } from '../constants.js';
import { ByteQueue } from './byte-queue.js';
import * as P from './protocol.js';

/** What the server exports (one export per server; '' is accepted as its alias). */
export interface ExportConfig {
  readonly name: string;
  readonly description: string | undefined;
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  /** How long a client may take to finish the handshake. */
  readonly handshakeTimeoutMs: number;
}

/** The outcome of a successful handshake. */
export interface NegotiatedSession {
  readonly structuredReplies: boolean;
  readonly transmissionFlags: number;
  /** Context ID of base:allocation, or -1 when BLOCK_STATUS is not allowed. */
  readonly baseAllocationContextId: number;
}

export interface HandshakeIo {
  readonly queue: ByteQueue;
  write(data: Buffer): void;
  isShuttingDown(): boolean;
}

const BASE_ALLOCATION_CONTEXT_ID = 1;
const CLIENT_FLAGS_KNOWN = P.NBD_FLAG_C_FIXED_NEWSTYLE | P.NBD_FLAG_C_NO_ZEROES;
/** Smallest INFO/GO payload: u32 name length + u16 request count. */
const INFO_REQUEST_BYTES_MIN = 6;
/** Smallest META payload: u32 name length + u32 query count. */
const META_REQUEST_BYTES_MIN = 8;

/** Transmission flags for an export, given whether SR was negotiated. */
export function transmissionFlagsFor(config: ExportConfig, structuredReplies: boolean): number {
  let flags = P.NBD_FLAG_HAS_FLAGS | P.NBD_FLAG_SEND_FLUSH | P.NBD_FLAG_SEND_FUA | P.NBD_FLAG_SEND_CACHE |
    P.NBD_FLAG_CAN_MULTI_CONN;
  if (config.readOnly) flags |= P.NBD_FLAG_READ_ONLY;
  else flags |= P.NBD_FLAG_SEND_TRIM | P.NBD_FLAG_SEND_WRITE_ZEROES | P.NBD_FLAG_SEND_FAST_ZERO;
  if (structuredReplies) flags |= P.NBD_FLAG_SEND_DF;
  return flags;
}

class ServerHandshake {
  private structuredReplies = false;
  private noZeroes = false;
  /** Export name the last SET_META_CONTEXT selected base:allocation for, or null. */
  private metaExportName: string | null = null;

  constructor(private readonly io: HandshakeIo, private readonly config: ExportConfig) {}

  async run(): Promise<NegotiatedSession | null> {
    const greeting = Buffer.alloc(P.NBD_GREETING_BYTES);
    greeting.writeBigUInt64BE(P.NBDMAGIC, 0);
    greeting.writeBigUInt64BE(P.IHAVEOPT, 8);
    greeting.writeUInt16BE(P.NBD_FLAG_FIXED_NEWSTYLE | P.NBD_FLAG_NO_ZEROES, 16);
    this.io.write(greeting);
    const clientFlags = (await this.io.queue.readExact(4)).readUInt32BE(0);
    if ((clientFlags & ~CLIENT_FLAGS_KNOWN) !== 0) return null;
    this.noZeroes = (clientFlags & P.NBD_FLAG_C_NO_ZEROES) !== 0;
    for (;;) {
      const header = await this.io.queue.readExact(P.NBD_OPTION_HEADER_BYTES);
      if (header.readBigUInt64BE(0) !== P.IHAVEOPT) return null;
      const option = header.readUInt32BE(8);
      const length = header.readUInt32BE(12);
      if (length > NBD_OPTION_BYTES_MAX) {
        // Refuse without reading or allocating: we cannot skip gigabytes, so close.
        this.reply(option, P.NBD_REP_ERR_TOO_BIG, textPayload('option too long'));
        return null;
      }
      const data = await this.io.queue.readExact(length);
      const outcome = this.handleOption(option, data);
      if (outcome !== 'continue') return outcome;
    }
  }

  private handleOption(option: number, data: Buffer): NegotiatedSession | null | 'continue' {
    if (this.io.isShuttingDown() && option !== P.NBD_OPT_ABORT) {
      if (option === P.NBD_OPT_EXPORT_NAME) return null;
      this.reply(option, P.NBD_REP_ERR_SHUTDOWN, textPayload('server is shutting down'));
      return 'continue';
    }
    switch (option) {
      case P.NBD_OPT_EXPORT_NAME: return this.exportName(data);
      case P.NBD_OPT_ABORT:
        this.reply(option, P.NBD_REP_ACK);
        return null;
      case P.NBD_OPT_LIST: this.list(data); return 'continue';
      case P.NBD_OPT_INFO: this.infoOrGo(option, data); return 'continue';
      case P.NBD_OPT_GO: return this.infoOrGo(option, data) ?? 'continue';
      case P.NBD_OPT_STRUCTURED_REPLY:
        if (data.length !== 0) return this.invalid(option, 'STRUCTURED_REPLY takes no data');
        this.structuredReplies = true;
        this.reply(option, P.NBD_REP_ACK);
        return 'continue';
      case P.NBD_OPT_LIST_META_CONTEXT:
      case P.NBD_OPT_SET_META_CONTEXT:
        this.metaContext(option, data);
        return 'continue';
      default:
        // STARTTLS, EXTENDED_HEADERS, PEEK_EXPORT and unknown options.
        this.reply(option, P.NBD_REP_ERR_UNSUP, textPayload('option not supported'));
        return 'continue';
    }
  }

  private invalid(option: number, message: string): 'continue' {
    this.reply(option, P.NBD_REP_ERR_INVALID, textPayload(message));
    return 'continue';
  }

  private knownExport(name: string): boolean {
    return name === '' || name === this.config.name;
  }

  private session(): NegotiatedSession {
    return {
      structuredReplies: this.structuredReplies,
      transmissionFlags: transmissionFlagsFor(this.config, this.structuredReplies),
      baseAllocationContextId: this.metaExportName !== null ? BASE_ALLOCATION_CONTEXT_ID : -1,
    };
  }

  private exportName(data: Buffer): NegotiatedSession | null {
    const name = data.toString('utf8');
    if (!this.knownExport(name)) return null;
    // BLOCK_STATUS needs the meta selection to be for the same export name.
    if (this.metaExportName !== name) this.metaExportName = null;
    const session = this.session();
    const reply = Buffer.alloc(P.NBD_EXPORT_NAME_REPLY_BYTES + (this.noZeroes ? 0 : P.NBD_EXPORT_NAME_PADDING_BYTES));
    reply.writeBigUInt64BE(BigInt(this.config.sizeBytes), 0);
    reply.writeUInt16BE(session.transmissionFlags, 8);
    this.io.write(reply);
    return session;
  }

  private list(data: Buffer): void {
    if (data.length !== 0) {
      this.invalid(P.NBD_OPT_LIST, 'LIST takes no data');
      return;
    }
    const name = Buffer.from(this.config.name, 'utf8');
    const description = Buffer.from(this.config.description ?? '', 'utf8');
    const payload = Buffer.alloc(4 + name.length + description.length);
    payload.writeUInt32BE(name.length, 0);
    name.copy(payload, 4);
    description.copy(payload, 4 + name.length);
    this.reply(P.NBD_OPT_LIST, P.NBD_REP_SERVER, payload);
    this.reply(P.NBD_OPT_LIST, P.NBD_REP_ACK);
  }

  /** INFO and GO; returns the session when GO succeeded. */
  private infoOrGo(option: number, data: Buffer): NegotiatedSession | null {
    if (data.length < INFO_REQUEST_BYTES_MIN) return this.invalidNull(option, 'option too short');
    const nameBytes = data.readUInt32BE(0);
    if (nameBytes > data.length - INFO_REQUEST_BYTES_MIN) return this.invalidNull(option, 'name length overruns the option');
    if (nameBytes > NBD_STRING_BYTES_MAX) return this.invalidNull(option, 'name too long');
    const name = data.toString('utf8', 4, 4 + nameBytes);
    const requestCount = data.readUInt16BE(4 + nameBytes);
    if (4 + nameBytes + 2 + 2 * requestCount !== data.length) {
      return this.invalidNull(option, 'information request count does not match the option length');
    }
    if (!this.knownExport(name)) {
      this.reply(option, P.NBD_REP_ERR_UNKNOWN, textPayload(`unknown export '${name}'`));
      return null;
    }
    const requested = new Set<number>();
    for (let i = 0; i < requestCount; i++) requested.add(data.readUInt16BE(4 + nameBytes + 2 + 2 * i));
    const session = this.session();
    this.sendInfoExport(option, session.transmissionFlags);
    if (requested.has(P.NBD_INFO_NAME)) this.sendInfoString(option, P.NBD_INFO_NAME, this.config.name);
    if (requested.has(P.NBD_INFO_DESCRIPTION) && this.config.description !== undefined) {
      this.sendInfoString(option, P.NBD_INFO_DESCRIPTION, this.config.description);
    }
    if (requested.has(P.NBD_INFO_BLOCK_SIZE)) this.sendInfoBlockSize(option);
    this.reply(option, P.NBD_REP_ACK);
    if (option !== P.NBD_OPT_GO) return null;
    if (this.metaExportName !== name) return { ...session, baseAllocationContextId: -1 };
    return session;
  }

  private invalidNull(option: number, message: string): null {
    this.invalid(option, message);
    return null;
  }

  private sendInfoExport(option: number, flags: number): void {
    const payload = Buffer.alloc(12);
    payload.writeUInt16BE(P.NBD_INFO_EXPORT, 0);
    payload.writeBigUInt64BE(BigInt(this.config.sizeBytes), 2);
    payload.writeUInt16BE(flags, 10);
    this.reply(option, P.NBD_REP_INFO, payload);
  }

  private sendInfoString(option: number, type: number, text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    const payload = Buffer.alloc(2 + bytes.length);
    payload.writeUInt16BE(type, 0);
    bytes.copy(payload, 2);
    this.reply(option, P.NBD_REP_INFO, payload);
  }

  private sendInfoBlockSize(option: number): void {
    const payload = Buffer.alloc(14);
    payload.writeUInt16BE(P.NBD_INFO_BLOCK_SIZE, 0);
    payload.writeUInt32BE(1, 2);
    payload.writeUInt32BE(NBD_PREFERRED_BLOCK_BYTES, 6);
    payload.writeUInt32BE(NBD_PAYLOAD_BYTES_MAX, 10);
    this.reply(option, P.NBD_REP_INFO, payload);
  }

  private metaContext(option: number, data: Buffer): void {
    const isSet = option === P.NBD_OPT_SET_META_CONTEXT;
    if (isSet) this.metaExportName = null;
    if (!this.structuredReplies) {
      this.invalid(option, 'meta contexts need structured replies first');
      return;
    }
    const parsed = parseMetaRequest(data);
    if (typeof parsed === 'string') {
      this.invalid(option, parsed);
      return;
    }
    if (!this.knownExport(parsed.exportName)) {
      this.reply(option, P.NBD_REP_ERR_UNKNOWN, textPayload(`unknown export '${parsed.exportName}'`));
      return;
    }
    const matches = isSet
      ? parsed.queries.some((query) => query === P.NBD_META_CONTEXT_BASE_ALLOCATION)
      : parsed.queries.length === 0 || parsed.queries.some((q) => q === 'base:' || q === P.NBD_META_CONTEXT_BASE_ALLOCATION);
    if (matches) {
      const contextName = Buffer.from(P.NBD_META_CONTEXT_BASE_ALLOCATION, 'utf8');
      const payload = Buffer.alloc(4 + contextName.length);
      payload.writeUInt32BE(isSet ? BASE_ALLOCATION_CONTEXT_ID : 0, 0);
      contextName.copy(payload, 4);
      this.reply(option, P.NBD_REP_META_CONTEXT, payload);
      if (isSet) this.metaExportName = parsed.exportName;
    }
    this.reply(option, P.NBD_REP_ACK);
  }

  private reply(option: number, type: number, payload?: Buffer): void {
    const length = payload?.length ?? 0;
    const header = Buffer.alloc(P.NBD_OPTION_REPLY_HEADER_BYTES + length);
    header.writeBigUInt64BE(P.NBD_OPTION_REPLY_MAGIC, 0);
    header.writeUInt32BE(option, 8);
    header.writeUInt32BE(type >>> 0, 12);
    header.writeUInt32BE(length, 16);
    payload?.copy(header, P.NBD_OPTION_REPLY_HEADER_BYTES);
    this.io.write(header);
  }
}

/** Parses a LIST/SET_META_CONTEXT payload; returns an error message if malformed. */
function parseMetaRequest(data: Buffer): { exportName: string; queries: string[] } | string {
  if (data.length < META_REQUEST_BYTES_MIN) return 'option too short';
  const nameBytes = data.readUInt32BE(0);
  if (nameBytes > data.length - META_REQUEST_BYTES_MIN) return 'name length overruns the option';
  const exportName = data.toString('utf8', 4, 4 + nameBytes);
  let position = 4 + nameBytes;
  const queryCount = data.readUInt32BE(position);
  position += 4;
  const queries: string[] = [];
  for (let i = 0; i < queryCount; i++) {
    if (data.length - position < 4) return 'query count overruns the option';
    const queryBytes = data.readUInt32BE(position);
    position += 4;
    if (queryBytes > data.length - position) return 'query length overruns the option';
    if (queryBytes > NBD_STRING_BYTES_MAX) return 'query too long';
    queries.push(data.toString('utf8', position, position + queryBytes));
    position += queryBytes;
  }
  if (position !== data.length) return 'trailing bytes after the queries';
  return { exportName, queries };
}

function textPayload(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/** Runs the handshake; resolves null when the connection must close. Rejects on EOF. */
export function negotiate(io: HandshakeIo, config: ExportConfig): Promise<NegotiatedSession | null> {
  return new ServerHandshake(io, config).run();
}
