// Prometheus exposition for GET /metrics (prom-client registry, one per
// server, never the global default one). Names are prefixed `blockcache_`;
// units come last (`_seconds`, `_bytes`), counters end in `_total`.
//
// Counters and gauges are read from the engine only when scraped (collect
// callbacks), so they cost nothing between scrapes. Latency histograms are fed
// by TimedDevice layers around the cache device, the origin and the engine as
// the NBD server sees it (client requests). They are LatencyHistograms, not
// prom-client Histograms: recording an observation is a bucket search and two
// typed-array increments (prom-client's observe hashes labels and allocates
// per call), and the cumulative buckets, _sum and _count are built only when
// scraped, in the same exposition prom-client's Histogram gives.
import { Counter, Gauge, Registry } from 'prom-client';
import type { Metric } from 'prom-client';
import type { CacheEngine } from '../cache/engine.js';
import type { InlineIoGate } from '../devices/inline-io-gate.js';
import { DEVICE_OPERATIONS } from '../layers/timed-device.js';
import type { IoObserver } from '../layers/timed-device.js';

/** Latency buckets in seconds: 50 µs (page-cache hit) to 10 s (a stalled network origin). */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One exposition sample, shaped as prom-client's Histogram gives them to its Registry. */
interface HistogramSample {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

interface HistogramData {
  name: string;
  help: string;
  type: 'histogram';
  values: HistogramSample[];
  aggregator: 'sum';
}

/**
 * A histogram with one label whose values are known up front (`op`: the
 * DeviceOp indices), recorded into typed arrays: per label value one count per
 * bucket (non-cumulative, plus +Inf) and a sum. It is a metric object for a
 * prom-client Registry (the duck-typed contract Histogram meets: name, help,
 * type, aggregator, get(), getForPromString(), reset()) whose exposition
 * matches prom-client's Histogram for the same observations: cumulative `le`
 * buckets, `+Inf`, `_sum` and `_count` per label value that has been observed,
 * labels as `{le="…",op="…"}`.
 */
export class LatencyHistogram implements IoObserver {
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  private readonly bounds: Float64Array;
  /** Per label value, bounds.length + 1 counts (the last: above every bound). */
  private readonly counts: Float64Array;
  private readonly sums: Float64Array;
  private readonly stride: number;
  /** One shared-labels object per label value, reused across scrapes (prom-client caches their text by identity). */
  private readonly sharedLabels: Array<Record<string, string>>;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelName: string,
    readonly labelValues: readonly string[],
    buckets: readonly number[] = LATENCY_BUCKETS_SECONDS,
  ) {
    for (let i = 1; i < buckets.length; i++) if (!(buckets[i]! > buckets[i - 1]!)) throw new Error(`${name}: buckets must increase`);
    this.bounds = Float64Array.from(buckets);
    this.stride = buckets.length + 1;
    this.counts = new Float64Array(this.stride * labelValues.length);
    this.sums = new Float64Array(labelValues.length);
    this.sharedLabels = labelValues.map((value) => ({ [labelName]: value }));
  }

  /** Records one observation (the hot path: no allocation, no lookup). Non-finite values are dropped. */
  record(label: number, value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    const n = bounds.length;
    let i = 0;
    while (i < n && value > bounds[i]!) i++;
    this.counts[label * this.stride + i]++;
    this.sums[label] += value;
  }

  /** Observations recorded for a label value. */
  count(label: number): number {
    let total = 0;
    const base = label * this.stride;
    for (let i = 0; i < this.stride; i++) total += this.counts[base + i]!;
    return total;
  }

  reset(): void {
    this.counts.fill(0);
    this.sums.fill(0);
  }

  /** Samples with the label value as shared labels (what the Registry formats for the text exposition). */
  getForPromString(): Promise<HistogramData> {
    return Promise.resolve(this.collect(false));
  }

  /** Samples with `le` and the label value in `labels` (getMetricsAsJSON), like prom-client's Histogram.get(). */
  get(): Promise<HistogramData> {
    return Promise.resolve(this.collect(true));
  }

  /** This histogram as a prom-client Metric, for Registry.registerMetric (typed there as its own classes only). */
  asMetric(): Metric {
    return this as unknown as Metric;
  }

  private collect(splay: boolean): HistogramData {
    const bucketName = `${this.name}_bucket`;
    const values: HistogramSample[] = [];
    const bounds = this.bounds;
    // Field for field what prom-client's Histogram gives (exemplar: null on buckets, undefined on _sum and _count).
    const sample = (labels: Record<string, string | number>, shared: Record<string, string>, value: number, metricName: string, exemplar: null | undefined) =>
      values.push(splay ? { value, metricName, exemplar, labels: { ...labels, ...shared } } : { labels, sharedLabels: shared, value, metricName, exemplar });
    for (let label = 0; label < this.labelValues.length; label++) {
      const count = this.count(label);
      if (count === 0) continue; // like prom-client: a label value appears once observed
      const shared = this.sharedLabels[label]!;
      const base = label * this.stride;
      let cumulative = 0;
      for (let i = 0; i < bounds.length; i++) {
        cumulative += this.counts[base + i]!;
        sample({ le: bounds[i]! }, shared, cumulative, bucketName, null);
      }
      sample({ le: '+Inf' }, shared, count, bucketName, null);
      sample({}, shared, this.sums[label]!, `${this.name}_sum`, undefined);
      sample({}, shared, count, `${this.name}_count`, undefined);
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

type Observers = { client: LatencyHistogram; cacheDevice: LatencyHistogram; origin: LatencyHistogram };

export class CacheMetrics {
  readonly registry = new Registry();
  private engine: CacheEngine | undefined;
  private inlineReads: InlineIoGate | undefined;
  private inlineWrites: InlineIoGate | undefined;
  readonly observers: Observers;

  constructor() {
    const histogram = (name: string, help: string): LatencyHistogram => {
      const metric = new LatencyHistogram(name, help, 'op', DEVICE_OPERATIONS);
      this.registry.registerMetric(metric.asMetric());
      return metric;
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

  /** Exposes the cache device's inline-I/O counters (a FileDevice opened with inlineIo; null: none). */
  watchInlineIo(reads: InlineIoGate | null, writes: InlineIoGate | null): void {
    this.inlineReads = reads ?? undefined;
    this.inlineWrites = writes ?? undefined;
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
    counter('blockcache_read_hits_by_tier_total', 'Block reads answered from the cache, by tier (ram + ssd = read hits)', ['tier'], (e) => [
      [{ tier: 'ram' }, e.ramStats.readHits], [{ tier: 'ssd' }, e.stats.readHits - e.ramStats.readHits],
    ]);
    counter('blockcache_ram_write_absorbs_total', 'Block writes completed in the RAM tier (writeback)', [], (e) => [[{}, e.ramStats.writeAbsorbs]]);
    counter('blockcache_ram_zero_copy_reads_total', 'Read requests sent straight from RAM pages, without a copy', [], (e) => [[{}, e.ramStats.zeroCopyReads]]);
    counter('blockcache_ram_pushes_total', 'Dirty RAM pages pushed down to the SSD tier', [], (e) => [[{}, e.ramWriter.pushed]]);
    gauge('blockcache_ram_bytes', 'Size of the RAM tier (0 = off)', [], (e) => [[{}, e.ramBytes]]);
    gauge('blockcache_ram_resident_bytes', 'Bytes of blocks held in the RAM tier', [], (e) => [[{}, (e.ram?.residentPages ?? 0) * e.blockBytes]]);
    gauge('blockcache_ram_dirty_bytes', 'Bytes in the RAM tier newer than the SSD tier', [], (e) => [[{}, (e.ram?.dirtyCount ?? 0) * e.blockBytes]]);
    counter('blockcache_uncached_blocks_total', 'Blocks served from or written to the origin without caching', ['op'], (e) => [
      [{ op: 'read' }, e.stats.uncachedReads], [{ op: 'write' }, e.stats.uncachedWrites],
    ]);
    counter('blockcache_sequential_bypass_blocks_total', 'Blocks of sequential streams that bypassed the cache', ['op'], (e) => [
      [{ op: 'read' }, e.stats.sequentialBypassReads], [{ op: 'write' }, e.stats.sequentialBypassWrites],
    ]);
    counter('blockcache_readahead_blocks_total', 'Cold blocks fetched next to read misses into free slots (readahead)', [], (e) => [[{}, e.stats.readaheadBlocks]]);
    counter('blockcache_readahead_failures_total', 'Readaheads whose wider origin read failed (the request was retried alone)', [], (e) => [[{}, e.stats.readaheadFailures]]);
    counter('blockcache_evictions_total', 'Clean blocks evicted to make room', [], (e) => [[{}, e.stats.evictions]]);
    counter('blockcache_invalidations_total', 'Cached blocks dropped by trim, zero, write-around or errors', [], (e) => [[{}, e.stats.invalidations]]);
    counter('blockcache_no_room_total', 'Allocations that found every block of the set dirty or busy', [], (e) => [[{}, e.stats.noRoom]]);
    counter('blockcache_writeback_blocks_total', 'Dirty blocks written back to the origin', [], (e) => [[{}, e.stats.writebacks]]);
    counter('blockcache_writeback_bytes_total', 'Bytes written back to the origin', [], (e) => [[{}, e.stats.writebackBytes]]);
    counter('blockcache_commits_total', 'Metadata commits', [], (e) => [[{}, e.stats.commits]]);
    counter('blockcache_metadata_records_deferred_total', 'Metadata records a commit could not write because their page was unreadable (retried at the next commit)', [], (e) => [[{}, e.stats.recordsDeferred]]);
    counter('blockcache_io_errors_total', 'Device I/O errors', ['device', 'op'], (e) => [
      [{ device: 'cache', op: 'read' }, e.stats.cacheReadErrors], [{ device: 'cache', op: 'write' }, e.stats.cacheWriteErrors],
      [{ device: 'origin', op: 'any' }, e.stats.originErrors],
    ]);
    gauge('blockcache_cache_blocks', 'Cache blocks (slots) on the cache device', [], (e) => [[{}, e.mapping.cacheBlocks]]);
    gauge('blockcache_metadata_memory_bytes', 'Memory the SSD tier keeps for its cache blocks (slot table, index, policy, cleaner)', [], (e) => [[{}, e.metadataMemoryBytes]]);
    gauge('blockcache_block_size_bytes', 'Cache block size', [], (e) => [[{}, e.blockBytes]]);
    gauge('blockcache_valid_blocks', 'Cache blocks holding data', [], (e) => [[{}, e.table.validCount]]);
    gauge('blockcache_dirty_blocks', 'Cache blocks newer than the origin', [], (e) => [[{}, e.table.dirtyCount]]);
    gauge('blockcache_dirty_bytes', 'Bytes newer than the origin', [], (e) => [[{}, e.table.dirtyCount * e.blockBytes]]);
    gauge('blockcache_dirty_threshold_ratio', 'Dirty share background writeback keeps to', [], (e) => [[{}, e.cleaner.settings.dirtyThresholdPercent / 100]]);
    gauge('blockcache_writeback_rate_bytes_per_second', 'Bytes written back per second (recent window)', [], (e) => [[{}, e.cleaner.estimate().rateBytesPerSecond]]);
    gauge('blockcache_writeback_rate_limit_bytes_per_second', 'Background writeback cap (0 = unlimited)', [], (e) => [[{}, e.cleaner.settings.writebackRateBytesPerSecond]]);
    gauge('blockcache_writeback_pace_bytes_per_second', 'Pace of background writeback while clients are busy (dirty-pace; 0 = not paced now)', [],
      (e) => [[{}, e.cleaner.paceRateBytesPerSecond]]);
    gauge('blockcache_writeback_rate_limit_iops', 'Background writeback cap in writes per second (0 = unlimited)', [], (e) => [[{}, e.cleaner.settings.writebackRateIops]]);
    gauge('blockcache_clean_eta_seconds', 'Estimated seconds to write every dirty block back (NaN: unknown)', [], (e) => [[{}, e.cleaner.estimate().etaSeconds ?? Number.NaN]]);
    gauge('blockcache_inflight_requests', 'Client requests in progress', [], (e) => [[{}, e.inflight]]);
    gauge('blockcache_sequential_cutoff_bytes', 'Streams this long bypass the cache (0 = off)', [], (e) => [[{}, e.sequentialCutoffBytes]]);
    gauge('blockcache_readahead_bytes', 'Readahead window on read misses (0 = off)', [], (e) => [[{}, e.readaheadBytes]]);
    gauge('blockcache_state', 'Engine state (1 for the current one)', ['state'], (e) =>
      (['running', 'degraded', 'stopping', 'stopped'] as const).map((state) => [{ state }, e.state === state ? 1 : 0]));
    const inlineCounter = (name: string, help: string, labelNames: string[], values: (gate: InlineIoGate) => Array<[Record<string, string>, number]>) =>
      new Counter({
        name, help, labelNames: ['op', ...labelNames], registers,
        collect() {
          this.reset();
          for (const [op, gate] of [['read', metrics.inlineReads], ['write', metrics.inlineWrites]] as const) {
            if (gate) for (const [labels, value] of values(gate)) this.inc({ op, ...labels }, value);
          }
        },
      });
    inlineCounter('blockcache_cache_small_io_total',
      'Small cache-device reads and writes by path: inline (on the event loop) or deferred (to the thread pool while inline I/O backs off)', ['path'], (g) => [
        [{ path: 'inline' }, g.inline], [{ path: 'deferred' }, g.deferred],
      ]);
    inlineCounter('blockcache_cache_inline_slow_io_total',
      'Inline cache-device reads over 50 µs and writes over 1 ms (charged to the stall budget)', [], (g) => [[{}, g.slow]]);
    gauge('blockcache_info', 'Mode and policy (always 1)', ['mode', 'policy'], (e) => [[{ mode: e.mode, policy: e.policy.name }, 1]]);
  }
}
