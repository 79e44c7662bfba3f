// Batched positional I/O off the event loop: one job reads (or writes) many
// scattered pieces of a file with synchronous system calls in a worker thread,
// so N small reads cost one worker round trip instead of N libuv thread-pool
// round trips (each of which also costs the event loop a callback, a promise and
// a request object). Used where many small, unrelated pieces are known at once:
// the cleaner reading a round's dirty slots (scattered in a randomly written
// cache) and the coalescing layer writing many small runs to the origin.
//
// A job's memory is a SharedArrayBuffer the worker reads into or writes from
// directly (no copy, no transfer): the caller must not touch it until the job
// settles, and must not reuse it after a failed job (a stopped worker may still
// finish a system call into it). Pieces are packed
// in `memory` in the order given; the worker merges pieces that continue each
// other on the file into one system call. File descriptors are process-wide, so
// a worker uses the FileDevice's fd directly; the device must stay open while a
// job runs (callers never close a device with I/O in flight).
//
// Workers start on first use, are unref'd while idle (they never keep the
// process alive) and ref'd while a job runs. A worker that dies fails its jobs
// with EIO; the next job starts a new one. Errors of a job come back as
// ScatterIoError (the errno code and the failing position); FileDevice maps them
// to BlockcacheError.
import { Worker } from 'node:worker_threads';
import { SCATTER_IO_JOB_BYTES_MAX, SCATTER_IO_MEMORY_KEEP, SCATTER_IO_SMALL_JOB_BYTES, SCATTER_IO_SMALL_MEMORY_KEEP, SCATTER_IO_WORKERS } from '../constants.js';
import type { ScatterJob, ScatterReply } from './scatter-io-worker.js';

/** A failed job: `code` is the errno code (e.g. 'EIO', 'EBADF'), `position` the failing file offset (-1: unknown). */
export class ScatterIoError extends Error {
  override name = 'ScatterIoError';
  constructor(readonly code: string, message: string, readonly position: number) {
    super(message);
  }
}

/** A device that can do batched scattered I/O (FileDevice; pass-through layers may forward it). */
export interface PieceDevice {
  /**
   * Reads piece i (lengths[i] bytes at device offset positions[i]) into `memory`,
   * packed in order; with `checksums`, resolves to each piece's CRC-32C.
   */
  readPieces(positions: Float64Array, lengths: Uint32Array, memory: SharedArrayBuffer, checksums?: boolean): Promise<Uint32Array | undefined>;
  /** Writes piece i from `memory` (packed in order) to positions[i]. */
  writePieces(positions: Float64Array, lengths: Uint32Array, memory: SharedArrayBuffer): Promise<void>;
  /** Gets the workers ready ahead of a burst of jobs (see ScatterIo.warm). */
  warm?(): void;
  /** True when a small read (write) would run inline on the calling thread now: cheaper than a job. */
  inlineNow?(isRead: boolean): boolean;
}

interface Running {
  readonly resolve: (checksums: Uint32Array | undefined) => void;
  readonly reject: (error: Error) => void;
}

interface WorkerSlot {
  readonly worker: Worker;
  readonly running: Map<number, Running>;
  dead: boolean;
}

export class ScatterIo {
  private readonly slots: WorkerSlot[] = [];
  private readonly spare: SharedArrayBuffer[] = [];
  private readonly smallSpare: SharedArrayBuffer[] = [];
  private nextId = 1;

  constructor(private readonly workersMax = SCATTER_IO_WORKERS) {}

  /**
   * Memory for a job of `bytes` (at most SCATTER_IO_JOB_BYTES_MAX): a kept block
   * when one is free, else a new one. Give it back with recycle() when done.
   */
  memory(bytes: number): SharedArrayBuffer {
    if (bytes <= SCATTER_IO_SMALL_JOB_BYTES) return this.smallSpare.pop() ?? new SharedArrayBuffer(SCATTER_IO_SMALL_JOB_BYTES);
    if (bytes <= SCATTER_IO_JOB_BYTES_MAX) return this.spare.pop() ?? new SharedArrayBuffer(SCATTER_IO_JOB_BYTES_MAX);
    return new SharedArrayBuffer(bytes);
  }

  /** Gives back memory of a job that succeeded (never of one that failed). */
  recycle(memory: SharedArrayBuffer): void {
    if (memory.byteLength === SCATTER_IO_JOB_BYTES_MAX && this.spare.length < SCATTER_IO_MEMORY_KEEP) this.spare.push(memory);
    else if (memory.byteLength === SCATTER_IO_SMALL_JOB_BYTES && this.smallSpare.length < SCATTER_IO_SMALL_MEMORY_KEEP) this.smallSpare.push(memory);
  }

  /** Runs one job on the least busy worker; resolves to the pieces' checksums if asked for. */
  run(write: boolean, fd: number, positions: Float64Array, lengths: Uint32Array, memory: SharedArrayBuffer, checksums = false): Promise<Uint32Array | undefined> {
    let bytes = 0;
    for (let i = 0; i < lengths.length; i++) bytes += lengths[i]!;
    if (positions.length !== lengths.length || bytes > memory.byteLength) {
      return Promise.reject(new ScatterIoError('EINVAL', `scatter I/O: ${lengths.length} pieces of ${bytes} bytes do not fit ${memory.byteLength} bytes of memory`, -1));
    }
    const slot = this.pick();
    const id = this.nextId++;
    return new Promise<Uint32Array | undefined>((resolve, reject) => {
      if (slot.running.size === 0) slot.worker.ref();
      slot.running.set(id, { resolve, reject });
      const job: ScatterJob = { id, write, fd, positions, lengths, memory, checksums };
      slot.worker.postMessage(job);
    });
  }

  /**
   * Starts every worker now (idle and unref'd, so they never keep the process
   * alive). A worker takes tens of milliseconds of CPU to start; without this the
   * first burst of jobs (a flush's first chunks) waits for all of them at once.
   * Costs about 10 MiB of resident memory per worker.
   */
  warm(): void {
    while (this.slots.length < this.workersMax) this.start();
  }

  /** Stops every worker (their running jobs fail); later jobs start new ones. */
  async close(): Promise<void> {
    const slots = this.slots.splice(0);
    for (const slot of slots) this.fail(slot, new ScatterIoError('EIO', 'scatter I/O worker stopped', -1));
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
  }

  private pick(): WorkerSlot {
    let best: WorkerSlot | undefined;
    for (const slot of this.slots) if (!best || slot.running.size < best.running.size) best = slot;
    if (best && (best.running.size === 0 || this.slots.length >= this.workersMax)) return best;
    return this.start();
  }

  private start(): WorkerSlot {
    const worker = new Worker(new URL('./scatter-io-worker.js', import.meta.url));
    const slot: WorkerSlot = { worker, running: new Map(), dead: false };
    worker.on('message', (reply: ScatterReply) => {
      const running = slot.running.get(reply.id);
      if (!running) return;
      slot.running.delete(reply.id);
      if (slot.running.size === 0) worker.unref();
      if (reply.error) running.reject(new ScatterIoError(reply.error.code ?? 'EIO', reply.error.message, reply.error.position));
      else running.resolve(reply.checksums);
    });
    const die = (error: Error) => {
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots.splice(index, 1);
      this.fail(slot, new ScatterIoError('EIO', `scatter I/O worker failed: ${error.message}`, -1));
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new Error(`exited with code ${code}`)));
    // Only after the listeners: adding a 'message' listener refs the worker again, and a
    // warmed worker that never gets a job would then keep the process alive forever.
    worker.unref();
    this.slots.push(slot);
    return slot;
  }

  private fail(slot: WorkerSlot, error: ScatterIoError): void {
    if (slot.dead) return;
    slot.dead = true;
    for (const running of slot.running.values()) running.reject(error);
    slot.running.clear();
  }
}

/** The process's shared pool (workers are per process; jobs from every device share them). */
export const scatterIo = new ScatterIo();
