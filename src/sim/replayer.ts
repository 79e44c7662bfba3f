// Replays block accesses through the real mapping (SetMapping + BlockIndex +
// per-cache-block origin array) and a ReplacementPolicy, making exactly the
// calls the engine makes, on metadata only (no data, no I/O).
//
// Semantics: writeback with write-allocate: every miss, read or write, is
// inserted unless the policy's admit() says no; every block is evictable
// (a simulated writeback cleans instantly). Free blocks of a set are used in
// order before any eviction. Invariant: index and origins agree with the
// policy's view of residency after every access.
import { BlockIndex } from '../cache/block-index.js';
import { SetMapping } from '../cache/set-mapping.js';
import { NO_BLOCK, READ_ACCESS, ReplacementPolicy, WRITE_ACCESS } from '../policies/policy.js';
import { assert } from '../stdx/assert.js';

export interface SimResult {
  readonly accesses: number;
  readonly misses: number;
  readonly missRatio: number;
  readonly readAccesses: number;
  readonly readMisses: number;
  readonly readMissRatio: number;
}

const EVERY_BLOCK_EVICTABLE = (): boolean => true;

export class Replayer {
  private readonly mapping: SetMapping | null;
  private readonly index: BlockIndex;
  private readonly origins: Float64Array;
  private readonly usedPerSet: Uint32Array;
  private accesses = 0;
  private misses = 0;
  private readAccesses = 0;
  private readMisses = 0;

  constructor(readonly cacheBlocks: number, readonly assoc: number, readonly policy: ReplacementPolicy) {
    assert(cacheBlocks > 0 && assoc > 0 && cacheBlocks % assoc === 0, 'assoc must divide cacheBlocks');
    // A fully associative cache has one set whatever its size; SetMapping needs a power-of-two assoc.
    this.mapping = assoc === cacheBlocks ? null : new SetMapping(cacheBlocks, assoc);
    this.origins = new Float64Array(cacheBlocks);
    const origins = this.origins;
    this.index = new BlockIndex(cacheBlocks, (cacheBlock) => origins[cacheBlock]!);
    this.usedPerSet = new Uint32Array(cacheBlocks / assoc);
  }

  /** Mapping bytes: the block index plus the per-cache-block origin array. */
  get mappingBytes(): number {
    return this.index.memoryBytes + this.origins.byteLength;
  }

  /** One access to one cache block's worth of origin; returns true on a hit. */
  access(originBlock: number, isWrite: boolean): boolean {
    this.accesses++;
    if (!isWrite) this.readAccesses++;
    const context = isWrite ? WRITE_ACCESS : READ_ACCESS;
    const resident = this.index.get(originBlock);
    if (resident >= 0) {
      this.policy.hit(resident, context);
      return true;
    }
    this.misses++;
    if (!isWrite) this.readMisses++;
    const set = this.mapping === null ? 0 : this.mapping.setOf(originBlock);
    if (!this.policy.admit(set, originBlock)) return false;
    let cacheBlock: number;
    if (this.usedPerSet[set]! < this.assoc) {
      cacheBlock = set * this.assoc + this.usedPerSet[set]!++;
    } else {
      cacheBlock = this.policy.victim(set, originBlock, EVERY_BLOCK_EVICTABLE);
      assert(cacheBlock !== NO_BLOCK && Math.floor(cacheBlock / this.assoc) === set, 'policy returned no victim in the set');
      this.index.delete(this.origins[cacheBlock]!);
      this.policy.remove(cacheBlock, true);
    }
    this.origins[cacheBlock] = originBlock;
    this.index.insert(originBlock, cacheBlock);
    this.policy.insert(cacheBlock, originBlock, context);
    return false;
  }

  /** Every resident block, as the engine would enumerate them when switching policy. */
  forEachResident(visit: (cacheBlock: number, originBlock: number) => void): void {
    for (let set = 0; set < this.usedPerSet.length; set++) {
      for (let slot = 0; slot < this.usedPerSet[set]!; slot++) {
        const cacheBlock = set * this.assoc + slot;
        visit(cacheBlock, this.origins[cacheBlock]!);
      }
    }
  }

  result(): SimResult {
    return {
      accesses: this.accesses,
      misses: this.misses,
      missRatio: this.accesses === 0 ? 0 : this.misses / this.accesses,
      readAccesses: this.readAccesses,
      readMisses: this.readMisses,
      readMissRatio: this.readAccesses === 0 ? 0 : this.readMisses / this.readAccesses,
    };
  }
}
