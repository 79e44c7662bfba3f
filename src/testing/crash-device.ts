// A simulated BlockDevice with a volatile write cache, for crash simulation
// (TigerBeetle's simulated storage, dm-log-writes' replay). Testing only;
// never imported by product code.
//
// Model. The device holds two images: `current` (what reads see) and `durable`
// (what survives power loss). A write lands in `current` at a random point
// between its issue and its completion, and each 512-byte sector it touches is
// appended to the pending list with the sector's whole new content (a
// sub-sector write is a read-modify-write of its sector: sectors are the
// atomic unit, as on real disks). `flush()` makes durable exactly the writes
// that had completed when it was called (and drops older pending versions of
// the same sectors: the disk's cache then holds the newer one). A FUA write is
// durable when it completes. TRIM and WRITE_ZEROES write zeroes.
//
// `crash(prng)` kills this device (every operation, in flight or new, never
// completes: a dead process sees no completions) and returns a new device
// whose image is the durable one plus, for each sector with pending versions,
// the durable content or any one of those versions, chosen independently per
// sector: multi-sector writes tear, and later writes may land without earlier
// ones.
//
// Optional, seeded: latency (in microtask turns, so runs stay deterministic:
// no timers are involved) and injected read/write errors (EIO).
// Concurrency: operations may overlap freely; the device does not order them.
import { BlockDevice, DeviceCapabilities, WriteFlags, ZeroFlags, checkRange } from '../devices/block-device.js';
import { SECTOR_BYTES } from '../constants.js';
import { BlockcacheError } from '../stdx/errors.js';
import { assert } from '../stdx/assert.js';
import { Prng } from './prng.js';

export interface CrashDeviceOptions {
  readonly name?: string;
  /** Drives latency, errors and nothing else; the crash takes its own PRNG. */
  readonly prng?: Prng;
  /** Each operation waits 0..latencyTurnsMax microtask turns before and after it takes effect. */
  readonly latencyTurnsMax?: number;
  readonly readErrorProbability?: number;
  readonly writeErrorProbability?: number;
  /**
   * Offer readNow and writeNow, as an inline FileDevice does: the current contents at once,
   * a write landing at once (errors injected alike; a failed one may have landed in part).
   */
  readonly synchronousIo?: boolean;
}

/** How the pending sectors are resolved at a crash (chosen at random unless given). */
export type CrashStyle = 'drop-all' | 'keep-all' | 'random';

interface PendingSector {
  readonly writeId: number;
  readonly sector: number;
  /** The write's sectors as they were after it landed; this sector is at `at`. */
  readonly content: Buffer;
  readonly at: number;
}

export interface CrashDeviceStats {
  reads: number;
  writes: number;
  flushes: number;
  injectedErrors: number;
}

const HANG: Promise<never> = new Promise<never>(() => {});

export class CrashDevice implements BlockDevice {
  readonly name: string;
  readonly capabilities: DeviceCapabilities = { trim: true, fastZero: true, multiConn: true };
  readonly stats: CrashDeviceStats = { reads: 0, writes: 0, flushes: 0, injectedErrors: 0 };
  private readonly current: Buffer;
  private readonly durable: Buffer;
  private pending: PendingSector[] = [];
  /** Writes that have completed but whose sectors may still be pending. */
  private readonly completedWrites = new Set<number>();
  private nextWriteId = 1;
  private dead = false;
  private readonly prng: Prng;

  constructor(readonly sizeBytes: number, private readonly options: CrashDeviceOptions = {}, image?: Buffer) {
    assert(Number.isSafeInteger(sizeBytes) && sizeBytes > 0 && sizeBytes % SECTOR_BYTES === 0, 'crash device size must be whole sectors');
    assert(!image || image.length === sizeBytes);
    this.name = options.name ?? `crash:${sizeBytes}`;
    this.prng = options.prng ?? new Prng(1);
    this.durable = image ? Buffer.from(image) : Buffer.alloc(sizeBytes);
    this.current = Buffer.from(this.durable);
    if (options.synchronousIo) {
      this.readNow = (target, offsetBytes) => {
        checkRange(this.sizeBytes, offsetBytes, target.length, false);
        this.readCurrent(target, offsetBytes);
        return true;
      };
      this.writeNow = (source, offsetBytes, flags) => {
        checkRange(this.sizeBytes, offsetBytes, source.length, true);
        if (this.dead || flags?.fua) return false;
        const writeId = this.nextWriteId++;
        if (!this.land(writeId, offsetBytes, source.length, (at) => source.copy(this.current, at))) {
          this.injectError(this.options.writeErrorProbability, 'write', offsetBytes);
        }
        this.completedWrites.add(writeId);
        return true;
      };
    }
  }

  readonly readNow?: (target: Buffer, offsetBytes: number) => boolean;
  readonly writeNow?: (source: Buffer, offsetBytes: number, flags?: WriteFlags) => boolean;

  get isDead(): boolean {
    return this.dead;
  }

  /** Sectors written but not yet durable (for tests and statistics). */
  get pendingSectors(): number {
    return this.pending.length;
  }

  async read(target: Buffer, offsetBytes: number): Promise<void> {
    checkRange(this.sizeBytes, offsetBytes, target.length, false);
    await this.latency();
    this.readCurrent(target, offsetBytes);
    await this.latency();
  }

  /** A read taking effect: an injected error, or the current contents. */
  private readCurrent(target: Buffer, offsetBytes: number): void {
    this.injectError(this.options.readErrorProbability, 'read', offsetBytes);
    this.stats.reads++;
    this.current.copy(target, 0, offsetBytes, offsetBytes + target.length);
  }

  async write(source: Buffer, offsetBytes: number, flags?: WriteFlags): Promise<void> {
    checkRange(this.sizeBytes, offsetBytes, source.length, true);
    await this.mutate(offsetBytes, source.length, (at) => source.copy(this.current, at), flags?.fua ?? false);
  }

  async writeZeroes(offsetBytes: number, lengthBytes: number, flags?: ZeroFlags): Promise<void> {
    checkRange(this.sizeBytes, offsetBytes, lengthBytes, true);
    await this.mutate(offsetBytes, lengthBytes, (at) => this.current.fill(0, at, at + lengthBytes), flags?.fua ?? false);
  }

  async trim(offsetBytes: number, lengthBytes: number, flags?: WriteFlags): Promise<void> {
    checkRange(this.sizeBytes, offsetBytes, lengthBytes, true);
    await this.mutate(offsetBytes, lengthBytes, (at) => this.current.fill(0, at, at + lengthBytes), flags?.fua ?? false);
  }

  /** Every write completed before the call is durable when the flush resolves. */
  async flush(): Promise<void> {
    if (this.dead) return HANG;
    const covered = new Set(this.completedWrites);
    await this.latency();
    this.stats.flushes++;
    this.persist(covered);
    await this.latency();
  }

  async close(): Promise<void> {
    if (this.dead) return HANG;
  }

  /** Power loss: this device dies; the returned one holds what survived. */
  crash(prng: Prng, style?: CrashStyle): CrashDevice {
    assert(!this.dead, 'crashing a dead device');
    this.dead = true;
    const chosen: CrashStyle = style ?? (['drop-all', 'keep-all', 'random', 'random'] as const)[prng.below(4)]!;
    const image = Buffer.from(this.durable);
    const bySector = new Map<number, PendingSector[]>();
    for (const entry of this.pending) {
      const versions = bySector.get(entry.sector);
      if (versions) versions.push(entry);
      else bySector.set(entry.sector, [entry]);
    }
    for (const [sector, versions] of bySector) {
      let pick: PendingSector | undefined;
      if (chosen === 'keep-all') pick = versions[versions.length - 1];
      else if (chosen === 'random') {
        const index = prng.below(versions.length + 1) - 1; // -1: the durable content
        pick = index >= 0 ? versions[index] : undefined;
      }
      if (pick) pick.content.copy(image, sector * SECTOR_BYTES, pick.at, pick.at + SECTOR_BYTES);
    }
    this.pending = [];
    return new CrashDevice(this.sizeBytes, { ...this.options, prng: new Prng(prng.next()) }, image);
  }

  /** What would survive if every pending write were lost now. */
  durableImage(): Buffer {
    return Buffer.from(this.durable);
  }

  /** What reads see now (bypassing latency and errors). */
  currentImage(): Buffer {
    return Buffer.from(this.current);
  }

  // ---- internals ------------------------------------------------------------------

  private async mutate(offsetBytes: number, lengthBytes: number, apply: (at: number) => void, fua: boolean): Promise<void> {
    const writeId = this.nextWriteId++;
    await this.latency();
    const decided = this.land(writeId, offsetBytes, lengthBytes, apply);
    await this.latency();
    if (!decided) this.injectError(this.options.writeErrorProbability, 'write', offsetBytes);
    if (fua) this.persist(new Set([writeId]));
    else this.completedWrites.add(writeId);
  }

  /**
   * A write taking effect: `apply` changes the current contents, whose sectors become pending.
   * A failed write may have written any part of itself, so an injected error comes before it
   * lands or after: true when it was decided before; false, the caller decides it once landed.
   */
  private land(writeId: number, offsetBytes: number, lengthBytes: number, apply: (at: number) => void): boolean {
    const failEarly = this.prng.chance(0.5);
    if (failEarly) this.injectError(this.options.writeErrorProbability, 'write', offsetBytes);
    this.stats.writes++;
    if (lengthBytes > 0) {
      apply(offsetBytes);
      const first = Math.floor(offsetBytes / SECTOR_BYTES);
      const end = Math.ceil((offsetBytes + lengthBytes) / SECTOR_BYTES);
      // One copy per write (whole sectors: a sub-sector write rewrites its sector), shared by its sectors.
      const content = Buffer.allocUnsafe((end - first) * SECTOR_BYTES);
      this.current.copy(content, 0, first * SECTOR_BYTES, end * SECTOR_BYTES);
      for (let sector = first; sector < end; sector++) {
        this.pending.push({ writeId, sector, content, at: (sector - first) * SECTOR_BYTES });
      }
    }
    return failEarly;
  }

  /** Makes the given writes' sectors durable; older pending versions of those sectors are superseded. */
  private persist(writes: Set<number>): void {
    if (writes.size === 0) return;
    const lastDurable = new Map<number, number>();
    this.pending.forEach((entry, index) => {
      if (!writes.has(entry.writeId)) return;
      entry.content.copy(this.durable, entry.sector * SECTOR_BYTES, entry.at, entry.at + SECTOR_BYTES);
      lastDurable.set(entry.sector, index);
    });
    this.pending = this.pending.filter((entry, index) =>
      !writes.has(entry.writeId) && index > (lastDurable.get(entry.sector) ?? -1));
    for (const writeId of writes) this.completedWrites.delete(writeId);
  }

  private async latency(): Promise<void> {
    if (this.dead) return HANG;
    const turns = this.options.latencyTurnsMax ? this.prng.below(this.options.latencyTurnsMax + 1) : 0;
    for (let turn = 0; turn < turns; turn++) await null;
    if (this.dead) return HANG;
  }

  private injectError(probability: number | undefined, what: string, offsetBytes: number): void {
    if (probability && this.prng.chance(probability)) {
      this.stats.injectedErrors++;
      throw new BlockcacheError('EIO', `${this.name}: injected ${what} error at ${offsetBytes}`);
    }
  }
}
