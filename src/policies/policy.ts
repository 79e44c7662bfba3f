// The replacement-policy interface: policies decide, the engine acts.
//
// A policy never does I/O, never blocks, and never changes which blocks are
// resident on its own: the engine tells it about every change (insert, remove)
// and asks it only for decisions (admit, victim). Cache blocks are grouped in
// sets of `assoc` consecutive indices: cache block b belongs to set
// floor(b / assoc); a fully associative cache has one set. All per-block state
// lives in typed arrays sized at construction (no allocation per access).

/** Returned by `victim` when no resident block of the set may be evicted. */
export const NO_BLOCK = 0xffffffff;

export interface PolicyGeometry {
  /**
   * The engine's map from cache block to the origin block it holds, for policies
   * that need origin blocks at eviction (ghosts, sketches) without a copy of their own.
   */
  readonly originOf?: (cacheBlock: number) => number;
  /** Number of cache blocks (slots). */
  readonly cacheBlocks: number;
  /** Blocks per set; equals cacheBlocks for a fully associative cache. Divides cacheBlocks. */
  readonly assoc: number;
}

/**
 * What the engine knows about the request behind an access (optional: policies
 * that ignore it behave the same with or without it). Callers pass shared
 * constant objects (READ_ACCESS, WRITE_ACCESS): no allocation per access.
 */
export interface AccessContext {
  readonly isWrite: boolean;
}

export const READ_ACCESS: AccessContext = Object.freeze({ isWrite: false });
export const WRITE_ACCESS: AccessContext = Object.freeze({ isWrite: true });

export interface ReplacementPolicy {
  readonly name: string;
  /** A client access hit the resident block. */
  hit(cacheBlock: number, context?: AccessContext): void;
  /**
   * A miss on `originBlock` that maps to `set`: should it be cached at all?
   * (Admission filters and S3-FIFO's tiny-queue rule say no sometimes.)
   */
  admit(set: number, originBlock: number): boolean;
  /**
   * The set has no free block: choose a resident block of `set` to evict for
   * `originBlock`, skipping blocks `evictable` rejects (busy or dirty ones).
   * Returns NO_BLOCK when none qualifies. The engine then calls remove(victim,
   * true) and insert(victim, originBlock). Internal reordering is allowed
   * (CLOCK's hand, S3-FIFO reinsertion); residency changes are not.
   */
  victim(set: number, originBlock: number, evictable: (cacheBlock: number) => boolean): number;
  /**
   * `originBlock` now lives in the (previously free) `cacheBlock`. `context` is the
   * access that brought it in; absent when a policy is rebuilt from a warm cache.
   */
  insert(cacheBlock: number, originBlock: number, context?: AccessContext): void;
  /** `cacheBlock` was emptied: `evicted` = true for replacement, false for invalidation (trim, write-around). */
  remove(cacheBlock: number, evicted: boolean): void;
  /** Bytes of memory held by the policy's state (reported per cache block by benchmarks). */
  readonly memoryBytes: number;
}

export type PolicyFactory = (geometry: PolicyGeometry) => ReplacementPolicy;

/**
 * How a policy reads the origin block of a cache block: through the engine's map
 * when the geometry gives one (no copy), else from its own array (`own`, which
 * the policy fills on insert; counted in its memoryBytes).
 */
export function originLookup(geometry: PolicyGeometry): { own: Float64Array | null; originOf: (cacheBlock: number) => number } {
  if (geometry.originOf !== undefined) return { own: null, originOf: geometry.originOf };
  const own = new Float64Array(geometry.cacheBlocks);
  return { own, originOf: (cacheBlock) => own[cacheBlock]! };
}
