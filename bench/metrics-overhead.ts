// Metrics overhead micro-benchmark (issue 7): ns per latency observation with
// prom-client's Histogram (the old observer: Map lookup of the label child,
// then child.observe) against LatencyHistogram.record, and ns per read through
// TimedDevice over a trivial in-memory device (before: .then() closures and
// the prom-client observer; after: the async TimedDevice and the recorder),
// against the bare device.
// Every case runs once per round, the cases interleaved, and the best round
// counts (the least disturbed by other load on the machine).
// Run: npx tsc -p . && node dist/bench/metrics-overhead.js [MILLION_OPS] [ROUNDS]
import { Histogram, Registry } from 'prom-client';
import { LATENCY_BUCKETS_SECONDS, LatencyHistogram } from '../src/control/metrics.js';
import { DEVICE_OPERATIONS, DeviceOp, IoObserver, TimedDevice } from '../src/layers/timed-device.js';
import { BlockDevice, DeviceCapabilities, WriteFlags, ZeroFlags } from '../src/devices/block-device.js';

const OPS = Math.round(Number(process.argv[2] ?? 0.5) * 1e6);
const ROUNDS = Number(process.argv[3] ?? 15);

// ---- Before: the observer and TimedDevice as they were ----------------------

type OldOperation = 'read' | 'write' | 'flush' | 'trim' | 'zero' | 'cache' | 'block_status';
type OldObserver = (operation: OldOperation, seconds: number) => void;

function promClientObserver(name: string): OldObserver {
  const metric = new Histogram({ name, help: 'h', labelNames: ['op'], buckets: [...LATENCY_BUCKETS_SECONDS], registers: [new Registry()] });
  const children = new Map<OldOperation, Histogram.Internal<'op'>>();
  return (operation, seconds) => {
    let child = children.get(operation);
    if (!child) children.set(operation, (child = metric.labels({ op: operation })));
    child.observe(seconds);
  };
}

class OldTimedDevice {
  constructor(readonly inner: BlockDevice, private readonly observe: OldObserver) {}
  private timed(operation: OldOperation, start: number, result: Promise<void>): Promise<void> {
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
}

/** The new recorder behind the old .then() shape: isolates async-function vs .then() closures. */
class ThenTimedDevice {
  constructor(readonly inner: BlockDevice, private readonly observer: IoObserver) {}
  read(target: Buffer, offsetBytes: number): Promise<void> {
    const start = performance.now();
    return this.inner.read(target, offsetBytes).then(
      () => this.observer.record(DeviceOp.read, (performance.now() - start) / 1000),
      (error: unknown) => {
        this.observer.record(DeviceOp.read, (performance.now() - start) / 1000);
        throw error;
      },
    );
  }
}

/** The new recorder in an async function (start time in the async frame, one await). */
class AsyncTimedDevice {
  constructor(readonly inner: BlockDevice, private readonly observer: IoObserver) {}
  async read(target: Buffer, offsetBytes: number): Promise<void> {
    const start = performance.now();
    try {
      await this.inner.read(target, offsetBytes);
    } finally {
      this.observer.record(DeviceOp.read, (performance.now() - start) / 1000);
    }
  }
}

// ---- A trivial in-memory device: a copy and an already-resolved promise -----

const RESOLVED = Promise.resolve();

class TrivialDevice implements BlockDevice {
  readonly name = 'trivial';
  readonly capabilities: DeviceCapabilities = { trim: false, fastZero: false, multiConn: true };
  private readonly memory: Buffer;
  constructor(readonly sizeBytes: number) {
    this.memory = Buffer.alloc(sizeBytes, 0x5a);
  }
  read(target: Buffer, offsetBytes: number): Promise<void> {
    this.memory.copy(target, 0, offsetBytes, offsetBytes + target.length);
    return RESOLVED;
  }
  readNow(target: Buffer, offsetBytes: number): boolean {
    this.memory.copy(target, 0, offsetBytes, offsetBytes + target.length);
    return true;
  }
  write(source: Buffer, offsetBytes: number, _flags?: WriteFlags): Promise<void> {
    source.copy(this.memory, offsetBytes);
    return RESOLVED;
  }
  flush(): Promise<void> { return RESOLVED; }
  trim(_offsetBytes: number, _lengthBytes: number, _flags?: WriteFlags): Promise<void> { return RESOLVED; }
  writeZeroes(_offsetBytes: number, _lengthBytes: number, _flags?: ZeroFlags): Promise<void> { return RESOLVED; }
  close(): Promise<void> { return RESOLVED; }
}

// ---- Harness -----------------------------------------------------------------

/** Log-uniform latencies from 10 µs to 20 ms (a cache hit to a slow origin), precomputed. */
const LATENCIES = (() => {
  const values = new Float64Array(1 << 16);
  let seed = 12345;
  for (let i = 0; i < values.length; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    values[i] = 10 ** (-5 + (seed / 2 ** 31) * 3.3);
  }
  return values;
})();
const MASK = LATENCIES.length - 1;

function nsPerOp(started: number, ops: number): number {
  return ((performance.now() - started) * 1e6) / ops;
}

function loopBaseline(): number {
  let sink = 0;
  const started = performance.now();
  for (let i = 0; i < OPS; i++) sink += LATENCIES[i & MASK]!;
  const ns = nsPerOp(started, OPS);
  if (sink === -1) console.log(sink);
  return ns;
}

function observeOld(observe: OldObserver): number {
  const ops = Math.min(OPS, 5e5); // prom-client is slow; 500k is plenty
  const operations: OldOperation[] = ['read', 'write', 'read', 'read'];
  const started = performance.now();
  for (let i = 0; i < ops; i++) observe(operations[i & 3]!, LATENCIES[i & MASK]!);
  return nsPerOp(started, ops);
}

function recordNew(observer: IoObserver): number {
  const operations = [DeviceOp.read, DeviceOp.write, DeviceOp.read, DeviceOp.read] as const;
  const started = performance.now();
  for (let i = 0; i < OPS; i++) observer.record(operations[i & 3]!, LATENCIES[i & MASK]!);
  return nsPerOp(started, OPS);
}

const clock: () => number = performance.now.bind(performance);
function performanceNow(): number {
  let sink = 0;
  const started = performance.now();
  for (let i = 0; i < OPS; i++) sink += clock();
  const ns = nsPerOp(started, OPS);
  if (sink === -1) console.log(sink);
  return ns;
}

/** Sequential awaited 4 KiB reads (each one microtask round trip, like a request at depth 1). */
async function reads(device: { read(target: Buffer, offsetBytes: number): Promise<void> }, ops: number): Promise<number> {
  const target = Buffer.alloc(4096);
  const started = performance.now();
  for (let i = 0; i < ops; i++) await device.read(target, (i & 255) * 4096);
  return nsPerOp(started, ops);
}

/** 32 reads in flight at once (fio's iodepth 32), awaited together. */
async function readsDepth32(device: { read(target: Buffer, offsetBytes: number): Promise<void> }, ops: number): Promise<number> {
  const targets = Array.from({ length: 32 }, () => Buffer.alloc(4096));
  const pending: Array<Promise<void>> = new Array(32);
  const started = performance.now();
  for (let i = 0; i < ops; i += 32) {
    for (let j = 0; j < 32; j++) pending[j] = device.read(targets[j]!, ((i + j) & 255) * 4096);
    await Promise.all(pending);
  }
  return nsPerOp(started, ops);
}

function readsNow(device: { readNow?(target: Buffer, offsetBytes: number): boolean }, ops: number): number {
  const target = Buffer.alloc(4096);
  const started = performance.now();
  for (let i = 0; i < ops; i++) device.readNow!(target, (i & 255) * 4096);
  return nsPerOp(started, ops);
}

type Case = { label: string; run: () => number | Promise<number>; minus?: string };

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${OPS} ops per round (reads: ${Math.min(OPS, 1e6)}), best of ${ROUNDS} interleaved rounds\n`);
  const device = new TrivialDevice(1 << 20);
  const readOps = Math.min(OPS, 1e6);
  const histogram = (name: string) => new LatencyHistogram(name, 'h', 'op', DEVICE_OPERATIONS);
  const oldObserve = promClientObserver('old_seconds');
  const recorder = histogram('new_seconds');
  const old1 = new OldTimedDevice(device, promClientObserver('old_read_seconds'));
  const then1 = new ThenTimedDevice(device, histogram('t_seconds'));
  const async1 = new AsyncTimedDevice(device, histogram('async_seconds'));
  const new1 = new TimedDevice(device, histogram('n_seconds'));
  const newNow = new TimedDevice(device, histogram('now_seconds'));
  const sections: Array<[string, Case[]]> = [
    ['Observation (one latency into a histogram; loop cost subtracted)', [
      { label: 'empty loop (baseline)', run: loopBaseline },
      { label: 'before: prom-client Histogram (Map lookup + child.observe)', run: () => observeOld(oldObserve), minus: 'empty loop (baseline)' },
      { label: 'after:  LatencyHistogram.record', run: () => recordNew(recorder), minus: 'empty loop (baseline)' },
      { label: 'performance.now() (bound, as TimedDevice calls it)', run: performanceNow, minus: 'empty loop (baseline)' },
    ]],
    ['4 KiB read over a trivial in-memory device, depth 1 (awaited one by one); overhead = minus bare', [
      { label: 'bare device read', run: () => reads(device, readOps) },
      { label: 'before: TimedDevice (.then closures) + prom-client', run: () => reads(old1, readOps), minus: 'bare device read' },
      { label: 'variant: .then closures + LatencyHistogram', run: () => reads(then1, readOps), minus: 'bare device read' },
      { label: 'variant: async function + LatencyHistogram', run: () => reads(async1, readOps), minus: 'bare device read' },
      { label: 'after:  TimedDevice (tap) + LatencyHistogram', run: () => reads(new1, readOps), minus: 'bare device read' },
    ]],
    ['4 KiB read, depth 32 (32 issued, then Promise.all); overhead = minus bare', [
      { label: 'bare device read d32', run: () => readsDepth32(device, readOps) },
      { label: 'before: TimedDevice (.then closures) + prom-client d32', run: () => readsDepth32(old1, readOps), minus: 'bare device read d32' },
      { label: 'variant: .then closures + LatencyHistogram d32', run: () => readsDepth32(then1, readOps), minus: 'bare device read d32' },
      { label: 'variant: async function + LatencyHistogram d32', run: () => readsDepth32(async1, readOps), minus: 'bare device read d32' },
      { label: 'after:  TimedDevice (tap) + LatencyHistogram d32', run: () => readsDepth32(new1, readOps), minus: 'bare device read d32' },
    ]],
    ['readNow (synchronous fast path); overhead = minus bare', [
      { label: 'bare device readNow', run: () => readsNow(device, OPS) },
      { label: 'TimedDevice readNow + LatencyHistogram', run: () => readsNow(newNow, OPS), minus: 'bare device readNow' },
    ]],
  ];
  const cases = sections.flatMap(([, list]) => list);
  const bestNs = new Map<string, number>();
  for (const c of cases) await c.run(); // warm-up (and JIT)
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of cases) bestNs.set(c.label, Math.min(bestNs.get(c.label) ?? Infinity, await c.run()));
  }
  for (const [title, list] of sections) {
    console.log(title);
    for (const c of list) {
      const ns = bestNs.get(c.label)!;
      const extra = c.minus === undefined ? '' : `   overhead ${(ns - bestNs.get(c.minus)!).toFixed(1).padStart(7)} ns`;
      console.log(`  ${c.label.padEnd(58)} ${ns.toFixed(1).padStart(8)} ns/op${extra}`);
    }
    console.log('');
  }
}

await main();
