// Prometheus exposition for GET /metrics (prom-client registry, one per
// server, never the global default one). Names are prefixed `blockcache_`;
// units come last (`_seconds`, `_bytes`), counters end in `_total`.
//
// Counters and gauges are read from the engine only when scraped (collect
// callbacks), so they cost nothing between scrapes. Latency histograms are fed
// by TimedDevice layers around the cache device, the origin and the engine as
// the NBD server sees it (client requests).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CacheEngine } from '../cache/engine.js';
import type { DeviceOperation, IoObserver } from '../layers/timed-device.js';

/** Latency buckets in seconds: 50 µs (page-cache hit) to 10 s (a stalled network origin). */
const LATENCY_BUCKETS_SECONDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type Observers = { client: IoObserver; cacheDevice: IoObserver; origin: IoObserver };

export class CacheMetrics {
  readonly registry = new Registry();
  private engine: CacheEngine | undefined;
  readonly observers: Observers;

  constructor() {
    const histogram = (name: string, help: string): IoObserver => {
      const metric = new Histogram({ name, help, labelNames: ['op'], buckets: LATENCY_BUCKETS_SECONDS, registers: [this.registry] });
      const children = new Map<DeviceOperation, Histogram.Internal<'op'>>();
      return (operation, seconds) => {
        let child = children.get(operation);
        if (!child) children.set(operation, (child = metric.labels({ op: operation })));
        child.observe(seconds);
      };
    };
    this.observers = {
      client: histogram('blockcache_request_duration_seconds', 'Client (NBD) request latency by operation'),
      cacheDevice: histogram('blockcache_cache_device_io_duration_seconds', 'Cache device I/O latency by operation'),
      origin: histogram('blockcache_origin_io_duration_seconds', 'Origin device I/O latency by operation'),
    };
    this.defineEngineMetrics();
  }

  /** The engine whose counters and gauges are exposed (set once it is open). */
  attach(engine: CacheEngine): void {
    this.engine = engine;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  private defineEngineMetrics(): void {
    const registers = [this.registry];
    const metrics = this;
    const counter = (name: string, help: string, labelNames: string[], values: (engine: CacheEngine) => Array<[Record<string, string>, number]>) =>
      new Counter({
        name, help, labelNames, registers,
        collect() {
          const engine = metrics.engine;
          if (!engine) return;
          this.reset();
          for (const [labels, value] of values(engine)) this.inc(labels, value);
        },
      });
    const gauge = (name: string, help: string, labelNames: string[], values: (engine: CacheEngine) => Array<[Record<string, string>, number]>) =>
      new Gauge({
        name, help, labelNames, registers,
        collect() {
          const engine = metrics.engine;
          if (!engine) return;
          this.reset();
          for (const [labels, value] of values(engine)) this.set(labels, value);
        },
      });
    counter('blockcache_requests_total', 'Client requests by operation', ['op'], (e) => [
      [{ op: 'read' }, e.stats.reads], [{ op: 'write' }, e.stats.writes], [{ op: 'flush' }, e.stats.flushes],
      [{ op: 'trim' }, e.stats.trims], [{ op: 'zero' }, e.stats.zeroes], [{ op: 'cache' }, e.stats.prefetches],
    ]);
    counter('blockcache_request_bytes_total', 'Client bytes read and written', ['op'], (e) => [
      [{ op: 'read' }, e.stats.bytesRead], [{ op: 'write' }, e.stats.bytesWritten],
    ]);
    counter('blockcache_block_lookups_total', 'Cache-block lookups by client reads and writes, by result', ['op', 'result'], (e) => [
      [{ op: 'read', result: 'hit' }, e.stats.readHits], [{ op: 'read', result: 'miss' }, e.stats.readMisses],
      [{ op: 'write', result: 'hit' }, e.stats.writeHits], [{ op: 'write', result: 'miss' }, e.stats.writeMisses],
    ]);
    counter('blockcache_uncached_blocks_total', 'Blocks served from or written to the origin without caching', ['op'], (e) => [
      [{ op: 'read' }, e.stats.uncachedReads], [{ op: 'write' }, e.stats.uncachedWrites],
    ]);
    counter('blockcache_sequential_bypass_blocks_total', 'Blocks of sequential streams that bypassed the cache', ['op'], (e) => [
      [{ op: 'read' }, e.stats.sequentialBypassReads], [{ op: 'write' }, e.stats.sequentialBypassWrites],
    ]);
    counter('blockcache_evictions_total', 'Clean blocks evicted to make room', [], (e) => [[{}, e.stats.evictions]]);
    counter('blockcache_invalidations_total', 'Cached blocks dropped by trim, zero, write-around or errors', [], (e) => [[{}, e.stats.invalidations]]);
    counter('blockcache_no_room_total', 'Allocations that found every block of the set dirty or busy', [], (e) => [[{}, e.stats.noRoom]]);
    counter('blockcache_writeback_blocks_total', 'Dirty blocks written back to the origin', [], (e) => [[{}, e.stats.writebacks]]);
    counter('blockcache_writeback_bytes_total', 'Bytes written back to the origin', [], (e) => [[{}, e.stats.writebackBytes]]);
    counter('blockcache_commits_total', 'Metadata commits', [], (e) => [[{}, e.stats.commits]]);
    counter('blockcache_io_errors_total', 'Device I/O errors', ['device', 'op'], (e) => [
      [{ device: 'cache', op: 'read' }, e.stats.cacheReadErrors], [{ device: 'cache', op: 'write' }, e.stats.cacheWriteErrors],
      [{ device: 'origin', op: 'any' }, e.stats.originErrors],
    ]);
    gauge('blockcache_cache_blocks', 'Cache blocks (slots) on the cache device', [], (e) => [[{}, e.mapping.cacheBlocks]]);
    gauge('blockcache_block_size_bytes', 'Cache block size', [], (e) => [[{}, e.blockBytes]]);
    gauge('blockcache_valid_blocks', 'Cache blocks holding data', [], (e) => [[{}, e.table.validCount]]);
    gauge('blockcache_dirty_blocks', 'Cache blocks newer than the origin', [], (e) => [[{}, e.table.dirtyCount]]);
    gauge('blockcache_dirty_bytes', 'Bytes newer than the origin', [], (e) => [[{}, e.table.dirtyCount * e.blockBytes]]);
    gauge('blockcache_dirty_threshold_ratio', 'Dirty share background writeback keeps to', [], (e) => [[{}, e.cleaner.settings.dirtyThresholdPercent / 100]]);
    gauge('blockcache_writeback_rate_bytes_per_second', 'Bytes written back per second (recent window)', [], (e) => [[{}, e.cleaner.estimate().rateBytesPerSecond]]);
    gauge('blockcache_writeback_rate_limit_bytes_per_second', 'Background writeback cap (0 = unlimited)', [], (e) => [[{}, e.cleaner.settings.writebackRateBytesPerSecond]]);
    gauge('blockcache_writeback_rate_limit_iops', 'Background writeback cap in writes per second (0 = unlimited)', [], (e) => [[{}, e.cleaner.settings.writebackRateIops]]);
    gauge('blockcache_clean_eta_seconds', 'Estimated seconds to write every dirty block back (NaN: unknown)', [], (e) => [[{}, e.cleaner.estimate().etaSeconds ?? Number.NaN]]);
    gauge('blockcache_inflight_requests', 'Client requests in progress', [], (e) => [[{}, e.inflight]]);
    gauge('blockcache_sequential_cutoff_bytes', 'Streams this long bypass the cache (0 = off)', [], (e) => [[{}, e.sequentialCutoffBytes]]);
    gauge('blockcache_state', 'Engine state (1 for the current one)', ['state'], (e) =>
      (['running', 'degraded', 'stopping', 'stopped'] as const).map((state) => [{ state }, e.state === state ? 1 : 0]));
    gauge('blockcache_info', 'Mode and policy (always 1)', ['mode', 'policy'], (e) => [[{ mode: e.mode, policy: e.policy.name }, 1]]);
  }
}
