// A pass-through BlockDevice for unit tests: counts reads, fails reads or writes
// on demand, and holds reads or write-zeroes until released (to open the window
// in which a concurrent request must behave). Not for production use.
import { BlockDevice, DeviceCapabilities, WriteFlags, ZeroFlags } from '../devices/block-device.js';
import { BlockcacheError } from '../stdx/errors.js';

export type HeldOperation = 'read' | 'writeZeroes';

export class TestDevice implements BlockDevice {
  readonly name: string;
  readonly sizeBytes: number;
  readonly capabilities: DeviceCapabilities;
  /** Reads started so far. */
  reads = 0;
  failReads = false;
  failWrites = false;
  /** Reads longer than this fail (a bad neighbour under a wide read). */
  failReadsLongerThan = Number.POSITIVE_INFINITY;
  private readonly held = new Map<HeldOperation, (() => void)[]>();

  constructor(private readonly inner: BlockDevice) {
    this.name = inner.name;
    this.sizeBytes = inner.sizeBytes;
    this.capabilities = inner.capabilities;
  }

  /** From now on operations of `kind` wait until `release(kind)`. */
  hold(kind: HeldOperation): void {
    if (!this.held.has(kind)) this.held.set(kind, []);
  }

  release(kind: HeldOperation): void {
    const waiting = this.held.get(kind) ?? [];
    this.held.delete(kind);
    for (const go of waiting) go();
  }

  private async gate(kind: HeldOperation): Promise<void> {
    const waiting = this.held.get(kind);
    if (waiting !== undefined) await new Promise<void>((go) => waiting.push(go));
  }

  async read(target: Buffer, offsetBytes: number): Promise<void> {
    this.reads++;
    await this.gate('read');
    if (this.failReads) throw new BlockcacheError('EIO', 'injected read error');
    if (target.length > this.failReadsLongerThan) throw new BlockcacheError('EIO', 'injected error on a long read');
    return this.inner.read(target, offsetBytes);
  }

  async write(source: Buffer, offsetBytes: number, flags?: WriteFlags): Promise<void> {
    if (this.failWrites) throw new BlockcacheError('EIO', 'injected write error');
    return this.inner.write(source, offsetBytes, flags);
  }

  async writeZeroes(offsetBytes: number, lengthBytes: number, flags?: ZeroFlags): Promise<void> {
    await this.gate('writeZeroes');
    return this.inner.writeZeroes(offsetBytes, lengthBytes, flags);
  }

  flush(): Promise<void> { return this.inner.flush(); }
  trim(offsetBytes: number, lengthBytes: number, flags?: WriteFlags): Promise<void> { return this.inner.trim(offsetBytes, lengthBytes, flags); }
  close(): Promise<void> { return this.inner.close(); }
}
