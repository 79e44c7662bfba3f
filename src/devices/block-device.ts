// The BlockDevice interface: the one narrow seam every layer speaks.
//
// A device is a byte-addressed store of `sizeBytes` bytes. Reads fill a target
// buffer, writes take a source buffer; both are byte-granular (any offset and
// length inside the device). Durability follows a disk with a volatile write
// cache: a completed write is durable after a later completed `flush()`, or at
// once when written with `fua`. Errors are BlockcacheErrors ('EIO', 'EINVAL',
// 'ENOSPC', 'ENOTSUP', 'ESHUTDOWN').
//
// Concurrency: callers may issue any number of operations at once; a device
// does not order overlapping operations (callers that need order wait).

export interface WriteFlags {
  /** Force unit access: durable before the promise resolves. */
  readonly fua?: boolean;
}

export interface ZeroFlags extends WriteFlags {
  /** The zeroed range must stay allocated (no hole punching). */
  readonly noHole?: boolean;
  /** Fail with ENOTSUP instead of falling back to writing zero buffers. */
  readonly fastZero?: boolean;
}

export interface DeviceCapabilities {
  /** Trim can really discard (otherwise it is accepted and does nothing). */
  readonly trim: boolean;
  /** Zeroing is cheaper than writing zero buffers (FAST_ZERO can succeed). */
  readonly fastZero: boolean;
  /** Device reads/writes are safe to issue concurrently to overlapping ranges. */
  readonly multiConn: boolean;
}

/** One run of `lengthBytes` with the same allocation state (NBD base:allocation). */
export interface Extent {
  lengthBytes: number;
  /** NBD_STATE_HOLE (1) | NBD_STATE_ZERO (2); 0 = data. */
  flags: number;
}

/** Data lent by readPinned: `views` in order, unchanged until `release()` (call it exactly once). */
export interface PinnedRead {
  readonly views: readonly Buffer[];
  release(): void;
}

export interface BlockDevice {
  /** A short human-readable name: a path or a URI. */
  readonly name: string;
  readonly sizeBytes: number;
  readonly capabilities: DeviceCapabilities;

  read(target: Buffer, offsetBytes: number): Promise<void>;
  /**
   * Serves the read at once, synchronously, if it can (true: `target` is filled);
   * false: nothing was done, call read(). Optional: the engine's fast path (RAM
   * tier, or a single-block SSD-tier hit), a FileDevice's inline read.
   */
  readNow?(target: Buffer, offsetBytes: number): boolean;
  /**
   * Zero-copy read: the data as views of memory the device keeps unchanged
   * until `release` is called (once the bytes are sent). null: nothing was
   * done, call readNow() or read(). Optional (the RAM tier's large-read path).
   */
  readPinned?(offsetBytes: number, lengthBytes: number): PinnedRead | null;
  /**
   * Completes the write at once if it can (true: done, durable like any completed
   * write after the next flush); false: nothing was done, call write(). Optional:
   * the engine's fast path (RAM tier, or a single-block SSD-tier hit), a FileDevice's
   * inline write.
   */
  writeNow?(source: Buffer, offsetBytes: number, flags?: WriteFlags): boolean;
  /**
   * Writes `source` at `offsetBytes`. The device keeps no reference to `source` once the
   * promise resolves (or once writeNow returns true): the NBD server reuses large payload
   * buffers after a successful write (src/nbd/reply-buffers.ts).
   */
  write(source: Buffer, offsetBytes: number, flags?: WriteFlags): Promise<void>;
  /**
   * Vectored I/O: reads into (writes from) `buffers` in order, as one range of
   * their total length starting at `offsetBytes` (preadv/pwritev: no copy into
   * one buffer). Optional; at most VECTORED_BUFFERS_MAX buffers.
   */
  readv?(targets: readonly Buffer[], offsetBytes: number): Promise<void>;
  writev?(sources: readonly Buffer[], offsetBytes: number): Promise<void>;
  flush(): Promise<void>;
  /** A hint: the range may read back as anything written before, or zero. */
  trim(offsetBytes: number, lengthBytes: number, flags?: WriteFlags): Promise<void>;
  writeZeroes(offsetBytes: number, lengthBytes: number, flags?: ZeroFlags): Promise<void>;
  /** Prefetch hint; never changes content. Optional. */
  cache?(offsetBytes: number, lengthBytes: number): Promise<void>;
  /** Allocation map of a range; optional (absent = everything is data). */
  blockStatus?(offsetBytes: number, lengthBytes: number): Promise<Extent[]>;
  close(): Promise<void>;
}

/** Throws EINVAL/ENOSPC for a range outside the device (shared by all devices). */
export { checkRange } from './check-range.js';
