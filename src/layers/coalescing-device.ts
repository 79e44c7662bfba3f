// A pass-through BlockDevice that merges adjacent reads (and adjacent plain
// writes) issued in the same event-loop turn into single device operations.
//
// Why: the engine works block by block, so a 1 MiB request becomes 256 4 KiB
// device calls, each a thread-pool round trip. Blocks of a sequential burst sit
// in consecutive slots, so most of those calls touch adjacent ranges and can be
// one call. Semantics are unchanged: each caller's promise settles when the
// merged operation does, with its error; FUA writes and large operations pass
// straight through; every other operation is forwarded as is.
// Concurrency: callers never issue overlapping operations at once (the engine's
// block locks), so merging cannot reorder conflicting operations.
import { BlockDevice, DeviceCapabilities, Extent, WriteFlags, ZeroFlags } from '../devices/block-device.js';
import { MiB } from '../constants.js';

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

  constructor(private readonly inner: BlockDevice) {
    this.name = inner.name;
    this.sizeBytes = inner.sizeBytes;
    this.capabilities = inner.capabilities;
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
      this.issue(pending, first, end, bytes, isRead);
      first = end;
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
