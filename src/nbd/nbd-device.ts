// NbdDevice: a BlockDevice backed by an NBD export (the project's NBD client).
//
// Maps the byte-granular device interface onto what the server advertised:
// requests are split at the maximum payload, sub-minimum I/O becomes
// read-modify-write of whole minimum blocks (serialised per block so two
// unaligned writes sharing a block cannot lose each other's bytes), FUA falls
// back to write+FLUSH, write-zeroes falls back to writing zero buffers, trim
// falls back to nothing (it is a hint), flush without SEND_FLUSH is a no-op.
//
// Invariants: every failure is a BlockcacheError; once the connection dropped,
// every pending and later operation fails at once with
// "<uri>: connection closed by server" (code EIO), never hangs.
// Concurrency: any number of callers; at most NBD_CLIENT_INFLIGHT_MAX requests
// on the wire (see ClientTransport).
import * as net from 'node:net';
import { GiB, NBD_CLIENT_CONNECT_TIMEOUT_MS, NBD_DIRECT_READ_BYTES_MIN, NBD_PAYLOAD_BYTES_MAX, NBD_RECEIVE_BUFFER_BYTES } from '../constants.js';
import { BlockDevice, DeviceCapabilities, WriteFlags, ZeroFlags, checkRange } from '../devices/block-device.js';
import { BlockcacheError } from '../stdx/errors.js';
import { ByteQueue } from './byte-queue.js';
import { ClientSession, clientNegotiate } from './client-handshake.js';
import { ClientTransport } from './client-transport.js';
import * as P from './protocol.js';
import { parseNbdUri } from './uri.js';

/** Largest TRIM / WRITE_ZEROES we send in one request when the server sets no maximum. */
const EFFECT_BYTES_MAX = 1 * GiB;

export class NbdDevice implements BlockDevice {
  readonly sizeBytes: number;
  readonly capabilities: DeviceCapabilities;
  private readonly dataBytesMax: number;
  private readonly effectBytesMax: number;
  private readonly blockLocks = new Map<number, Promise<void>>();
  private closing: Promise<void> | null = null;
  private zeroBuffer: Buffer | null = null;

  private constructor(
    readonly name: string,
    private readonly socket: net.Socket,
    private readonly transport: ClientTransport,
    private readonly session: ClientSession,
  ) {
    this.sizeBytes = session.sizeBytes;
    this.capabilities = {
      trim: this.has(P.NBD_FLAG_SEND_TRIM),
      fastZero: this.has(P.NBD_FLAG_SEND_WRITE_ZEROES) && this.has(P.NBD_FLAG_SEND_FAST_ZERO),
      multiConn: this.has(P.NBD_FLAG_CAN_MULTI_CONN),
    };
    const minimum = session.blockSizeMinimum;
    const maximum = Math.min(session.blockSizeMaximum, NBD_PAYLOAD_BYTES_MAX);
    this.dataBytesMax = Math.max(minimum, maximum - (maximum % minimum));
    const effect = Math.min(session.blockSizeMaximum, EFFECT_BYTES_MAX);
    this.effectBytesMax = Math.max(minimum, effect - (effect % minimum));
  }

  /** Connects and negotiates; rejects with DEVICE_OPEN / NBD_REFUSED / NBD_PROTOCOL. */
  static async connect(uri: string): Promise<NbdDevice> {
    const address = parseNbdUri(uri);
    const queue = new ByteQueue();
    const closedError = new BlockcacheError('EIO', `${uri}: connection closed by server`);
    let transport: ClientTransport | null = null;
    // Reads go into one reused buffer (bytes left unparsed are copied out before the next
    // read), or straight into a READ's target while its data streams in: no fresh Buffer per
    // read, no copy of the data (the server does the same: src/nbd/socket-adoption.ts).
    const receiveBuffer = Buffer.allocUnsafe(NBD_RECEIVE_BUFFER_BYTES);
    const onread = {
      buffer: (): Buffer => transport?.directTarget(NBD_DIRECT_READ_BYTES_MIN) ?? receiveBuffer,
      callback: (bytes: number, buffer: Uint8Array): boolean => {
        if (buffer !== receiveBuffer) transport!.onDirectData(bytes);
        else {
          queue.push(receiveBuffer.subarray(0, bytes));
          transport?.onData();
          queue.ownBytesIn(receiveBuffer);
        }
        return true; // keep reading
      },
    };
    const socket = address.transport === 'unix'
      ? net.connect({ path: address.socketPath, onread })
      : net.connect({ host: address.host, port: address.port, onread });
    socket.on('error', () => { /* reported through 'close' */ });
    socket.on('close', () => {
      queue.end(closedError);
      transport?.fail(closedError);
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      const session = await Promise.race([
        connectAndNegotiate(socket, queue, address.exportName, uri),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new BlockcacheError('DEVICE_OPEN',
            `${uri}: connect and handshake timed out after ${NBD_CLIENT_CONNECT_TIMEOUT_MS} ms`)), NBD_CLIENT_CONNECT_TIMEOUT_MS);
        }),
      ]);
      if (address.transport === 'tcp') socket.setNoDelay(true);
      transport = new ClientTransport(socket, queue, session.structuredReplies, uri);
      if (socket.destroyed) transport.fail(closedError);
      transport.onData();
      return new NbdDevice(uri, socket, transport, session);
    } catch (error) {
      socket.destroy();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Block size constraints the server advertised (1/4096/32 MiB if none). */
  get blockSizes(): { minimum: number; preferred: number; maximum: number } {
    return { minimum: this.session.blockSizeMinimum, preferred: this.session.blockSizePreferred, maximum: this.session.blockSizeMaximum };
  }

  get structuredReplies(): boolean {
    return this.session.structuredReplies;
  }

  get transmissionFlags(): number {
    return this.session.transmissionFlags;
  }

  async read(target: Buffer, offsetBytes: number): Promise<void> {
    this.checkOpen();
    checkRange(this.sizeBytes, offsetBytes, target.length, false);
    const minimum = this.session.blockSizeMinimum;
    if (offsetBytes % minimum === 0 && target.length % minimum === 0) {
      return this.readAligned(target, offsetBytes);
    }
    const start = offsetBytes - (offsetBytes % minimum);
    const end = Math.min(this.sizeBytes, roundUp(offsetBytes + target.length, minimum));
    const bounce = Buffer.allocUnsafe(end - start);
    await this.readAligned(bounce, start);
    bounce.copy(target, 0, offsetBytes - start, offsetBytes - start + target.length);
  }

  async write(source: Buffer, offsetBytes: number, flags?: WriteFlags): Promise<void> {
    this.checkWritable();
    checkRange(this.sizeBytes, offsetBytes, source.length, true);
    const fua = flags?.fua === true;
    await this.forEachAlignedPiece(offsetBytes, source.length,
      (at, length) => this.writeAligned(source.subarray(at - offsetBytes, at - offsetBytes + length), at, fua),
      (blockStart, at, length) => this.modifyBlock(blockStart, at, source.subarray(at - offsetBytes, at - offsetBytes + length), fua));
    if (fua) await this.emulateFua();
  }

  async flush(): Promise<void> {
    this.checkOpen();
    if (this.has(P.NBD_FLAG_SEND_FLUSH)) await this.transport.request(P.NBD_CMD_FLUSH, 0, 0, 0, null, null);
  }

  async trim(offsetBytes: number, lengthBytes: number, flags?: WriteFlags): Promise<void> {
    this.checkWritable();
    checkRange(this.sizeBytes, offsetBytes, lengthBytes, true);
    if (!this.has(P.NBD_FLAG_SEND_TRIM)) return;
    // A hint: round inward to whole minimum blocks.
    const minimum = this.session.blockSizeMinimum;
    const start = roundUp(offsetBytes, minimum);
    const end = offsetBytes + lengthBytes - ((offsetBytes + lengthBytes) % minimum);
    const fua = flags?.fua === true && this.has(P.NBD_FLAG_SEND_FUA) ? P.NBD_CMD_FLAG_FUA : 0;
    await this.splitEffect(start, end - start, (at, length) => this.transport.request(P.NBD_CMD_TRIM, fua, at, length, null, null));
    if (flags?.fua === true) await this.emulateFua();
  }

  async writeZeroes(offsetBytes: number, lengthBytes: number, flags?: ZeroFlags): Promise<void> {
    this.checkWritable();
    checkRange(this.sizeBytes, offsetBytes, lengthBytes, true);
    const fua = flags?.fua === true;
    const minimum = this.session.blockSizeMinimum;
    const unaligned = offsetBytes % minimum !== 0 || lengthBytes % minimum !== 0;
    if (flags?.fastZero === true && (!this.capabilities.fastZero || unaligned)) {
      throw new BlockcacheError('ENOTSUP', `${this.name}: the server cannot zero fast`);
    }
    await this.forEachAlignedPiece(offsetBytes, lengthBytes,
      (at, length) => this.zeroAligned(at, length, flags),
      (blockStart, at, length) => this.modifyBlock(blockStart, at, this.zeroes(length), fua));
    if (fua) await this.emulateFua();
  }

  async cache(offsetBytes: number, lengthBytes: number): Promise<void> {
    this.checkOpen();
    checkRange(this.sizeBytes, offsetBytes, lengthBytes, false);
    if (!this.has(P.NBD_FLAG_SEND_CACHE) || lengthBytes === 0) return;
    const minimum = this.session.blockSizeMinimum;
    const start = offsetBytes - (offsetBytes % minimum);
    const end = Math.min(this.sizeBytes, roundUp(offsetBytes + lengthBytes, minimum));
    await this.splitEffect(start, end - start, (at, length) => this.transport.request(P.NBD_CMD_CACHE, 0, at, length, null, null));
  }

  /** Waits for in-flight requests, sends DISC and closes the socket. */
  close(): Promise<void> {
    this.closing ??= this.runClose();
    return this.closing;
  }

  private async runClose(): Promise<void> {
    while (this.transport.inflightCount > 0 && this.transport.failed === null) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    if (!this.socket.destroyed) {
      this.transport.disconnect();
      this.transport.fail(new BlockcacheError('ESHUTDOWN', `${this.name} is closed`));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { this.socket.destroy(); }, NBD_CLIENT_CONNECT_TIMEOUT_MS);
        this.socket.once('close', () => { clearTimeout(timer); resolve(); });
        this.socket.end();
      });
    }
  }

  private has(flag: number): boolean {
    return (this.session.transmissionFlags & flag) !== 0;
  }

  private checkOpen(): void {
    if (this.closing !== null) throw new BlockcacheError('ESHUTDOWN', `${this.name} is closed`);
    const failure = this.transport.failed;
    if (failure !== null) throw failure;
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.has(P.NBD_FLAG_READ_ONLY)) throw new BlockcacheError('EIO', `${this.name}: the export is read-only`);
  }

  /** FUA without SEND_FUA: a FLUSH after the write gives the same guarantee. */
  private async emulateFua(): Promise<void> {
    if (!this.has(P.NBD_FLAG_SEND_FUA) && this.has(P.NBD_FLAG_SEND_FLUSH)) {
      await this.transport.request(P.NBD_CMD_FLUSH, 0, 0, 0, null, null);
    }
  }

  private fuaFlag(fua: boolean): number {
    return fua && this.has(P.NBD_FLAG_SEND_FUA) ? P.NBD_CMD_FLAG_FUA : 0;
  }

  private readAligned(target: Buffer, offsetBytes: number): Promise<void> {
    return this.splitData(offsetBytes, target.length, (at, length) =>
      this.transport.request(P.NBD_CMD_READ, 0, at, length, null, target.subarray(at - offsetBytes, at - offsetBytes + length)));
  }

  private writeAligned(source: Buffer, offsetBytes: number, fua: boolean): Promise<void> {
    const flags = this.fuaFlag(fua);
    return this.splitData(offsetBytes, source.length, (at, length) =>
      this.transport.request(P.NBD_CMD_WRITE, flags, at, length, source.subarray(at - offsetBytes, at - offsetBytes + length), null));
  }

  private async zeroAligned(offsetBytes: number, lengthBytes: number, flags: ZeroFlags | undefined): Promise<void> {
    const fua = flags?.fua === true;
    if (!this.has(P.NBD_FLAG_SEND_WRITE_ZEROES)) {
      await this.splitData(offsetBytes, lengthBytes, (at, length) => this.writeAligned(this.zeroes(length), at, fua));
      return;
    }
    const commandFlags = this.fuaFlag(fua) | (flags?.noHole === true ? P.NBD_CMD_FLAG_NO_HOLE : 0) |
      (flags?.fastZero === true ? P.NBD_CMD_FLAG_FAST_ZERO : 0);
    await this.splitEffect(offsetBytes, lengthBytes, (at, length) =>
      this.transport.request(P.NBD_CMD_WRITE_ZEROES, commandFlags, at, length, null, null));
  }

  private zeroes(length: number): Buffer {
    if (this.zeroBuffer === null || this.zeroBuffer.length < length) {
      this.zeroBuffer = Buffer.alloc(Math.max(length, this.session.blockSizeMinimum));
    }
    return this.zeroBuffer.subarray(0, length);
  }

  /**
   * Calls `aligned` for the whole-block middle of a range and `partial` for a
   * head and a tail that do not cover a whole minimum block.
   */
  private async forEachAlignedPiece(
    offsetBytes: number, lengthBytes: number,
    aligned: (at: number, length: number) => Promise<void>,
    partial: (blockStart: number, at: number, length: number) => Promise<void>,
  ): Promise<void> {
    if (lengthBytes === 0) return;
    const minimum = this.session.blockSizeMinimum;
    const end = offsetBytes + lengthBytes;
    const middleStart = roundUp(offsetBytes, minimum);
    const middleEnd = Math.max(middleStart, end - (end % minimum));
    const work: Array<Promise<void>> = [];
    if (offsetBytes < middleStart) {
      const blockStart = middleStart - minimum;
      work.push(partial(blockStart, offsetBytes, Math.min(end, middleStart) - offsetBytes));
    }
    if (middleEnd > middleStart) work.push(aligned(middleStart, middleEnd - middleStart));
    if (end > middleEnd) {
      work.push(partial(middleEnd, middleEnd, end - middleEnd));
    }
    await Promise.all(work);
  }

  /** Read-modify-write of one minimum block, serialised per block. */
  private modifyBlock(blockStart: number, at: number, data: Buffer, fua: boolean): Promise<void> {
    const minimum = this.session.blockSizeMinimum;
    const blockBytes = Math.min(minimum, this.sizeBytes - blockStart);
    const previous = this.blockLocks.get(blockStart) ?? Promise.resolve();
    const run = previous.then(async () => {
      const block = Buffer.allocUnsafe(blockBytes);
      await this.transport.request(P.NBD_CMD_READ, 0, blockStart, blockBytes, null, block);
      data.copy(block, at - blockStart);
      await this.transport.request(P.NBD_CMD_WRITE, this.fuaFlag(fua), blockStart, blockBytes, block, null);
    });
    const settled = run.then(() => {}, () => {});
    this.blockLocks.set(blockStart, settled);
    void settled.then(() => {
      if (this.blockLocks.get(blockStart) === settled) this.blockLocks.delete(blockStart);
    });
    return run;
  }

  private splitData(offsetBytes: number, lengthBytes: number, send: (at: number, length: number) => Promise<void>): Promise<void> {
    return split(offsetBytes, lengthBytes, this.dataBytesMax, send);
  }

  private splitEffect(offsetBytes: number, lengthBytes: number, send: (at: number, length: number) => Promise<void>): Promise<void> {
    return split(offsetBytes, lengthBytes, this.effectBytesMax, send);
  }
}

async function connectAndNegotiate(socket: net.Socket, queue: ByteQueue, exportName: string, uri: string): Promise<ClientSession> {
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void =>
      reject(new BlockcacheError('DEVICE_OPEN', `${uri}: cannot connect: ${error.message}`, { cause: error }));
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve();
    });
  });
  try {
    return await clientNegotiate({ queue, write: (data) => socket.write(data) }, exportName, uri);
  } catch (error) {
    if (error instanceof BlockcacheError && error.code === 'EIO') {
      throw new BlockcacheError('DEVICE_OPEN', `${uri}: connection closed by server during the handshake`);
    }
    throw error;
  }
}

/** Issues `send` for consecutive pieces of at most `pieceBytesMax`, concurrently. */
async function split(offsetBytes: number, lengthBytes: number, pieceBytesMax: number, send: (at: number, length: number) => Promise<void>): Promise<void> {
  if (lengthBytes <= 0) return;
  if (lengthBytes <= pieceBytesMax) return send(offsetBytes, lengthBytes);
  const pieces: Array<Promise<void>> = [];
  for (let done = 0; done < lengthBytes; done += pieceBytesMax) {
    pieces.push(send(offsetBytes + done, Math.min(pieceBytesMax, lengthBytes - done)));
  }
  await Promise.all(pieces);
}

function roundUp(value: number, multiple: number): number {
  const remainder = value % multiple;
  return remainder === 0 ? value : value + multiple - remainder;
}
