// A pass-through BlockDevice that merges adjacent reads (and adjacent plain
// writes) issued in the same event-loop turn into single device operations.
//
// Why: the engine works block by block, so a 1 MiB request becomes 256 4 KiB
// device calls, each a thread-pool round trip. A merged operation goes to the
// device as one vectored call (preadv/pwritev of the callers' own buffers) when
// it has readv/writev, else through one temporary buffer (a copy each way). Blocks of a sequential burst sit
// in consecutive slots, so most of those calls touch adjacent ranges and can be
// one call. Semantics are unchanged: each caller's promise settles when the
// merged operation does, with its error; FUA writes and large operations pass
// straight through; every other operation is forwarded as is.
//
// Scattered small writes: when one turn brings at least SCATTER_IO_PIECES_MIN
// non-adjacent small writes (the cleaner writing back sparse dirty blocks) and
// the device under this layer does batched I/O (a FileDevice), they go to it as
// batched jobs (src/devices/scatter-io.ts): one worker round trip per job of up
// to SCATTER_IO_JOB_BYTES_MAX instead of one thread-pool round trip each. Every
// caller of a job settles with the job's result (like a merged write).
// Scattered small reads (cache hits at queue depth) go the same way when the
// layer is made with `batchReads` and a turn brings at least
// SCATTER_READ_PIECES_MIN of them, at most SCATTER_READ_JOB_PIECES_MAX per job;
// the data is copied from the job's memory into each caller's buffer. A failed
// read job retries each of its reads alone, so each caller gets its own result.
// Neither batching happens while the device makes small operations of that kind
// inline on the calling thread (`inlineNow`, src/devices/inline-io-gate.ts): one
// system call each is then cheaper than a worker round trip.
// Concurrency: callers never issue overlapping operations at once (the engine's
// block locks), so merging cannot reorder conflicting operations; a synchronous
// readNow/writeNow goes only to a block no one holds, so nothing queued here is its.
import { BlockDevice, DeviceCapabilities, Extent, WriteFlags, ZeroFlags } from '../devices/block-device.js';
import {
  MiB, SCATTER_IO_JOB_BYTES_MAX, SCATTER_IO_PIECES_MIN, SCATTER_IO_PIECE_BYTES_MAX, SCATTER_READ_JOB_PIECES_MAX, SCATTER_READ_PIECES_MIN,
  VECTORED_BUFFERS_MAX,
} from '../constants.js';
import { PieceDevice, scatterIo } from '../devices/scatter-io.js';
import { TimedDevice } from './timed-device.js';

/** Largest merged operation: bounds the temporary buffer a merged read needs. */
export const COALESCED_BYTES_MAX = 4 * MiB;

interface Pending {
  readonly buffer: Buffer;
  readonly offsetBytes: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class CoalescingDevice implements BlockDevice {
  readonly name: string;
  readonly sizeBytes: number;
  readonly capabilities: DeviceCapabilities;
  private reads: Pending[] = [];
  private writes: Pending[] = [];
  private scheduled = false;
  private readonly dispatchBound = () => this.dispatch();

  /** The batched-I/O device under this layer, if any (scattered small writes go to it). */
  private readonly pieces: PieceDevice | undefined;
  /** The inner device's synchronous read and write, when it has them (never batched). */
  readonly readNow?: (target: Buffer, offsetBytes: number) => boolean;
  readonly writeNow?: (source: Buffer, offsetBytes: number, flags?: WriteFlags) => boolean;

  /**
   * `batchReads`: scattered small reads of one turn also go as batched jobs
   * (the cache device, whose hits come many at a time and fast; not an origin,
   * where separate reads keep a slow device's queue full).
   */
  constructor(readonly inner: BlockDevice, private readonly batchReads = false) {
    this.name = inner.name;
    this.sizeBytes = inner.sizeBytes;
    this.capabilities = inner.capabilities;
    this.pieces = pieceDeviceOf(inner);
    // A synchronous read or write is never batched: it passes straight through.
    if (inner.readNow) this.readNow = (target, offsetBytes) => inner.readNow!(target, offsetBytes);
    if (inner.writeNow) this.writeNow = (source, offsetBytes, flags) => inner.writeNow!(source, offsetBytes, flags);
  }

  read(target: Buffer, offsetBytes: number): Promise<void> {
    if (target.length >= COALESCED_BYTES_MAX) return this.inner.read(target, offsetBytes);
    return new Promise((resolve, reject) => {
      this.reads.push({ buffer: target, offsetBytes, resolve, reject });
      this.schedule();
    });
  }

  write(source: Buffer, offsetBytes: number, flags?: WriteFlags): Promise<void> {
    if (flags?.fua || source.length >= COALESCED_BYTES_MAX) return this.inner.write(source, offsetBytes, flags);
    return new Promise((resolve, reject) => {
      this.writes.push({ buffer: source, offsetBytes, resolve, reject });
      this.schedule();
    });
  }

  flush(): Promise<void> { return this.inner.flush(); }
  trim(offsetBytes: number, lengthBytes: number, flags?: WriteFlags): Promise<void> { return this.inner.trim(offsetBytes, lengthBytes, flags); }
  writeZeroes(offsetBytes: number, lengthBytes: number, flags?: ZeroFlags): Promise<void> { return this.inner.writeZeroes(offsetBytes, lengthBytes, flags); }
  close(): Promise<void> { return this.inner.close(); }

  get cache(): ((offsetBytes: number, lengthBytes: number) => Promise<void>) | undefined {
    return this.inner.cache?.bind(this.inner);
  }

  get blockStatus(): ((offsetBytes: number, lengthBytes: number) => Promise<Extent[]>) | undefined {
    return this.inner.blockStatus?.bind(this.inner);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(this.dispatchBound);
  }

  private dispatch(): void {
    this.scheduled = false;
    const reads = this.reads;
    const writes = this.writes;
    this.reads = [];
    this.writes = [];
    if (reads.length > 0) this.run(reads, true);
    if (writes.length > 0) this.run(writes, false);
  }

  private run(pending: Pending[], isRead: boolean): void {
    if (pending.length > 1) pending.sort((a, b) => a.offsetBytes - b.offsetBytes);
    const piecesMin = isRead ? SCATTER_READ_PIECES_MIN : SCATTER_IO_PIECES_MIN;
    // Not while the device makes small operations inline: one system call each is cheaper than a job.
    const batch = this.pieces !== undefined && (!isRead || this.batchReads) && pending.length >= piecesMin && this.pieces.inlineNow?.(isRead) !== true;
    // Groups of adjacent small operations (first, end, bytes) waiting to be batched.
    const small: number[] = [];
    let first = 0;
    while (first < pending.length) {
      let end = first + 1;
      let bytes = pending[first]!.buffer.length;
      while (end < pending.length) {
        const previous = pending[end - 1]!;
        const next = pending[end]!;
        if (next.offsetBytes !== previous.offsetBytes + previous.buffer.length || bytes + next.buffer.length > COALESCED_BYTES_MAX) break;
        bytes += next.buffer.length;
        end++;
      }
      if (batch && bytes <= SCATTER_IO_PIECE_BYTES_MAX) small.push(first, end, bytes);
      else this.issue(pending, first, end, bytes, isRead);
      first = end;
    }
    if (small.length / 3 >= piecesMin) this.issueBatches(pending, small, isRead);
    else for (let i = 0; i < small.length; i += 3) this.issue(pending, small[i]!, small[i + 1]!, small[i + 2]!, isRead);
  }

  /**
   * Reads or writes the groups in `small` (triples: first, end, bytes) as
   * batched jobs of up to SCATTER_IO_JOB_BYTES_MAX. A failed write job fails its
   * callers (like a merged write); a failed read job retries each of its reads
   * alone, so one unreadable block does not fail its neighbours.
   */
  private issueBatches(pending: Pending[], small: number[], isRead: boolean): void {
    const pieces = this.pieces!;
    const groupsPerJob = isRead ? SCATTER_READ_JOB_PIECES_MAX : Number.POSITIVE_INFINITY;
    for (let start = 0; start < small.length;) {
      let end = start;
      let bytes = 0;
      while (end < small.length && (end - start) / 3 < groupsPerJob && bytes + small[end + 2]! <= SCATTER_IO_JOB_BYTES_MAX) {
        bytes += small[end + 2]!;
        end += 3;
      }
      const items: Pending[] = [];
      for (let group = start; group < end; group += 3) for (let i = small[group]!; i < small[group + 1]!; i++) items.push(pending[i]!);
      const memory = scatterIo.memory(bytes);
      const packed = Buffer.from(memory);
      const positions = new Float64Array(items.length);
      const lengths = new Uint32Array(items.length);
      let at = 0;
      items.forEach((item, i) => {
        if (!isRead) packed.set(item.buffer, at);
        at += item.buffer.length;
        positions[i] = item.offsetBytes;
        lengths[i] = item.buffer.length;
      });
      if (isRead) {
        pieces.readPieces(positions, lengths, memory).then(
          () => {
            let from = 0;
            for (const item of items) from += packed.copy(item.buffer, 0, from, from + item.buffer.length);
            scatterIo.recycle(memory);
            for (const item of items) item.resolve();
          },
          () => { for (const item of items) this.inner.read(item.buffer, item.offsetBytes).then(item.resolve, item.reject); },
        );
      } else {
        pieces.writePieces(positions, lengths, memory).then(
          () => {
            scatterIo.recycle(memory);
            for (const item of items) item.resolve();
          },
          (error: unknown) => { for (const item of items) item.reject(error); },
        );
      }
      start = end;
    }
  }

  /** Issues pending[first, end) (adjacent, `bytes` in all) as one operation. */
  private issue(pending: Pending[], first: number, end: number, bytes: number, isRead: boolean): void {
    const head = pending[first]!;
    if (end - first === 1) {
      const operation = isRead ? this.inner.read(head.buffer, head.offsetBytes) : this.inner.write(head.buffer, head.offsetBytes);
      operation.then(head.resolve, head.reject);
      return;
    }
    const group = pending.slice(first, end);
    const settle = (error?: unknown) => {
      for (const item of group) {
        if (error === undefined) item.resolve();
        else item.reject(error);
      }
    };
    // Vectored I/O straight into (from) the callers' buffers when the device has it: no merged copy.
    const vectored = group.length <= VECTORED_BUFFERS_MAX && (isRead ? this.inner.readv : this.inner.writev);
    if (vectored) {
      vectored.call(this.inner, group.map((item) => item.buffer), head.offsetBytes).then(() => settle(), settle);
      return;
    }
    if (isRead) {
      const merged = Buffer.allocUnsafe(bytes);
      this.inner.read(merged, head.offsetBytes).then(() => {
        let at = 0;
        for (const item of group) {
          merged.copy(item.buffer, 0, at, at + item.buffer.length);
          at += item.buffer.length;
        }
        settle();
      }, settle);
    } else {
      this.inner.write(Buffer.concat(group.map((item) => item.buffer), bytes), head.offsetBytes).then(() => settle(), settle);
    }
  }
}

/**
 * The batched-I/O device under `device`: the first layer that does batched I/O
 * (a FileDevice, or a TimedDevice over one, which times each job), looking only
 * through layers that hold no data and change no bytes (this coalescing layer,
 * TimedDevice); undefined under any other layer.
 */
export function pieceDeviceOf(device: BlockDevice): PieceDevice | undefined {
  for (let layer: BlockDevice = device; ;) {
    const candidate = layer as Partial<PieceDevice>;
    if (typeof candidate.readPieces === 'function' && typeof candidate.writePieces === 'function') return layer as unknown as PieceDevice;
    if (layer instanceof CoalescingDevice || layer instanceof TimedDevice) layer = layer.inner;
    else return undefined;
  }
}
