// A pass-through BlockDevice that times every operation and reports it to an
// observer (latency histograms for /metrics). It changes nothing else: the
// same results, errors and capabilities as the device it wraps; optional
// operations exist only if the wrapped device has them.
//
// This sits on the hot path three times per client request (the client, the
// cache device, the origin), so each operation costs one performance.now() at
// the start, one at the end and one IoObserver.record() call (no label
// lookup, no allocation there), and the caller gets the inner device's own
// promise back. Operations are small integers (DeviceOp) so the observer
// finds its slot by index.
import { BlockDevice, DeviceCapabilities, Extent, PinnedRead, WriteFlags, ZeroFlags } from '../devices/block-device.js';
import type { PieceDevice } from '../devices/scatter-io.js';

/** Operation names, in DeviceOp index order (the `op` label of the latency histograms). */
export const DEVICE_OPERATIONS = ['read', 'write', 'flush', 'trim', 'zero', 'cache', 'block_status'] as const;
export type DeviceOperation = (typeof DEVICE_OPERATIONS)[number];

/** Index of each operation in DEVICE_OPERATIONS. */
export const DeviceOp = {
  read: 0, write: 1, flush: 2, trim: 3, zero: 4, cache: 5, block_status: 6,
} as const satisfies { [K in DeviceOperation]: number };
export type DeviceOpIndex = (typeof DeviceOp)[DeviceOperation];

/** Receives one latency observation per completed (or failed) operation. */
export interface IoObserver {
  /** `operation` is a DeviceOp index; `seconds` the operation's latency. Must not throw. */
  record(operation: DeviceOpIndex, seconds: number): void;
}

const READ = DeviceOp.read;
const WRITE = DeviceOp.write;
/** performance.now, bound once: the same clock without the per-call receiver check. */
const now: () => number = performance.now.bind(performance);

export class TimedDevice implements BlockDevice {
  readonly name: string;
  readonly sizeBytes: number;
  readonly capabilities: DeviceCapabilities;
  readonly readNow?: (target: Buffer, offsetBytes: number) => boolean;
  readonly readPinned?: (offsetBytes: number, lengthBytes: number) => PinnedRead | null;
  readonly writeNow?: (source: Buffer, offsetBytes: number, flags?: WriteFlags) => boolean;
  readonly readv?: (targets: readonly Buffer[], offsetBytes: number) => Promise<void>;
  readonly writev?: (sources: readonly Buffer[], offsetBytes: number) => Promise<void>;
  readonly cache?: (offsetBytes: number, lengthBytes: number) => Promise<void>;
  readonly blockStatus?: (offsetBytes: number, lengthBytes: number) => Promise<Extent[]>;
  /** Batched I/O (PieceDevice), when the inner device has it: each piece is recorded with its job's latency. */
  readonly readPieces?: PieceDevice['readPieces'];
  readonly writePieces?: PieceDevice['writePieces'];
  readonly warm?: () => void;
  readonly inlineNow?: (isRead: boolean) => boolean;

  constructor(readonly inner: BlockDevice, private readonly observer: IoObserver) {
    this.name = inner.name;
    this.sizeBytes = inner.sizeBytes;
    this.capabilities = inner.capabilities;
    // Optional operations: one closure per device (not per call), only if the
    // inner device has the operation. readNow/readPinned/writeNow are recorded only when
    // they did the work (false or null: the caller goes on to read()/write(), recorded
    // there); a throw passes through unrecorded, like a synchronous throw from
    // read().
    if (inner.readNow) {
      this.readNow = (target, offsetBytes) => {
        const start = now();
        if (!inner.readNow!(target, offsetBytes)) return false;
        observer.record(READ, (now() - start) / 1000);
        return true;
      };
    }
    if (inner.readPinned) {
      this.readPinned = (offsetBytes, lengthBytes) => {
        const start = now();
        const pinned = inner.readPinned!(offsetBytes, lengthBytes);
        if (pinned !== null) observer.record(READ, (now() - start) / 1000);
        return pinned;
      };
    }
    if (inner.writeNow) {
      this.writeNow = (source, offsetBytes, flags) => {
        const start = now();
        if (!inner.writeNow!(source, offsetBytes, flags)) return false;
        observer.record(WRITE, (now() - start) / 1000);
        return true;
      };
    }
    if (inner.readv) this.readv = (targets, offsetBytes) => this.timed(READ, now(), inner.readv!(targets, offsetBytes));
    if (inner.writev) this.writev = (sources, offsetBytes) => this.timed(WRITE, now(), inner.writev!(sources, offsetBytes));
    if (inner.cache) this.cache = (offsetBytes, lengthBytes) => this.timed(DeviceOp.cache, now(), inner.cache!(offsetBytes, lengthBytes));
    if (inner.blockStatus) this.blockStatus = (offsetBytes, lengthBytes) => this.timed(DeviceOp.block_status, now(), inner.blockStatus!(offsetBytes, lengthBytes));
    const pieces = inner as Partial<PieceDevice>;
    if (typeof pieces.readPieces === 'function' && typeof pieces.writePieces === 'function') {
      this.readPieces = (positions, lengths, memory, checksums) =>
        this.timed(READ, now(), pieces.readPieces!(positions, lengths, memory, checksums), positions.length);
      this.writePieces = (positions, lengths, memory) => this.timed(WRITE, now(), pieces.writePieces!(positions, lengths, memory), positions.length);
      if (typeof pieces.warm === 'function') this.warm = () => pieces.warm!();
      if (typeof pieces.inlineNow === 'function') this.inlineNow = (isRead) => pieces.inlineNow!(isRead);
    }
  }

  /**
   * Records `operation` (`count` times: once per piece of a batched job) when
   * `result` settles, and returns `result` itself: the caller gets the inner
   * device's own promise (same value, same error, no extra microtask hop), and
   * the observation is made first, by a reaction registered before the
   * caller's. One closure per operation, for both outcomes.
   */
  private timed<T>(operation: DeviceOpIndex, start: number, result: Promise<T>, count = 1): Promise<T> {
    const observer = this.observer;
    const settled = (): void => {
      const seconds = (now() - start) / 1000;
      for (let i = 0; i < count; i++) observer.record(operation, seconds);
    };
    // The derived promise always fulfils (record does not throw), so a rejection
    // is still the caller's to handle, exactly as without this layer.
    result.then(settled, settled);
    return result;
  }

  read(target: Buffer, offsetBytes: number): Promise<void> {
    return this.timed(READ, now(), this.inner.read(target, offsetBytes));
  }

  write(source: Buffer, offsetBytes: number, flags?: WriteFlags): Promise<void> {
    return this.timed(WRITE, now(), this.inner.write(source, offsetBytes, flags));
  }

  flush(): Promise<void> {
    return this.timed(DeviceOp.flush, now(), this.inner.flush());
  }

  trim(offsetBytes: number, lengthBytes: number, flags?: WriteFlags): Promise<void> {
    return this.timed(DeviceOp.trim, now(), this.inner.trim(offsetBytes, lengthBytes, flags));
  }

  writeZeroes(offsetBytes: number, lengthBytes: number, flags?: ZeroFlags): Promise<void> {
    return this.timed(DeviceOp.zero, now(), this.inner.writeZeroes(offsetBytes, lengthBytes, flags));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
