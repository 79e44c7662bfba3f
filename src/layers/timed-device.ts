// A pass-through BlockDevice that times every operation and reports it to an
// observer (latency histograms for /metrics). It changes nothing else: the
// same results, errors and capabilities as the device it wraps; optional
// operations exist only if the wrapped device has them.
import { BlockDevice, DeviceCapabilities, Extent, WriteFlags, ZeroFlags } from '../devices/block-device.js';

export type DeviceOperation = 'read' | 'write' | 'flush' | 'trim' | 'zero' | 'cache' | 'block_status';
export type IoObserver = (operation: DeviceOperation, seconds: number) => void;

export class TimedDevice implements BlockDevice {
  readonly name: string;
  readonly sizeBytes: number;
  readonly capabilities: DeviceCapabilities;
  readonly cache?: (offsetBytes: number, lengthBytes: number) => Promise<void>;
  readonly blockStatus?: (offsetBytes: number, lengthBytes: number) => Promise<Extent[]>;

  constructor(readonly inner: BlockDevice, private readonly observe: IoObserver) {
    this.name = inner.name;
    this.sizeBytes = inner.sizeBytes;
    this.capabilities = inner.capabilities;
    if (inner.cache) this.cache = (offsetBytes, lengthBytes) => this.time('cache', () => inner.cache!(offsetBytes, lengthBytes));
    if (inner.blockStatus) this.blockStatus = (offsetBytes, lengthBytes) => this.time('block_status', () => inner.blockStatus!(offsetBytes, lengthBytes));
  }

  private async time<T>(operation: DeviceOperation, run: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await run();
    } finally {
      this.observe(operation, (performance.now() - start) / 1000);
    }
  }

  /** Times an operation already started at `start` (the hot path: no closure, no async frame). */
  private timed(operation: DeviceOperation, start: number, result: Promise<void>): Promise<void> {
    return result.then(
      () => this.observe(operation, (performance.now() - start) / 1000),
      (error: unknown) => {
        this.observe(operation, (performance.now() - start) / 1000);
        throw error;
      },
    );
  }

  read(target: Buffer, offsetBytes: number): Promise<void> {
    return this.timed('read', performance.now(), this.inner.read(target, offsetBytes));
  }

  write(source: Buffer, offsetBytes: number, flags?: WriteFlags): Promise<void> {
    return this.timed('write', performance.now(), this.inner.write(source, offsetBytes, flags));
  }

  flush(): Promise<void> {
    return this.time('flush', () => this.inner.flush());
  }

  trim(offsetBytes: number, lengthBytes: number, flags?: WriteFlags): Promise<void> {
    return this.time('trim', () => this.inner.trim(offsetBytes, lengthBytes, flags));
  }

  writeZeroes(offsetBytes: number, lengthBytes: number, flags?: ZeroFlags): Promise<void> {
    return this.time('zero', () => this.inner.writeZeroes(offsetBytes, lengthBytes, flags));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
