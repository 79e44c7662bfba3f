// Unit tests of the latency histograms behind /metrics: LatencyHistogram's
// exposition is exactly prom-client's Histogram's for the same observations
// (cumulative buckets, +Inf, _sum, _count, label order), in text and in JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { CacheMetrics, LATENCY_BUCKETS_SECONDS, LatencyHistogram } from './metrics.js';
import { DEVICE_OPERATIONS, DeviceOp, TimedDevice } from '../layers/timed-device.js';
import { MemoryDevice } from '../devices/memory-device.js';

const NAME = 'blockcache_test_duration_seconds';
const HELP = 'Test latency by operation';

function pair(): { reference: Histogram<'op'>; recorder: LatencyHistogram; referenceRegistry: Registry; recorderRegistry: Registry } {
  const referenceRegistry = new Registry();
  const recorderRegistry = new Registry();
  const reference = new Histogram({ name: NAME, help: HELP, labelNames: ['op'], buckets: [...LATENCY_BUCKETS_SECONDS], registers: [referenceRegistry] });
  const recorder = new LatencyHistogram(NAME, HELP, 'op', DEVICE_OPERATIONS);
  recorderRegistry.registerMetric(recorder.asMetric());
  return { reference, recorder, referenceRegistry, recorderRegistry };
}

/** A deterministic spread of latencies: every bucket, exact bounds, zero, far above the last bound. */
function samples(count: number): number[] {
  const values: number[] = [0, 10, 10.000001, 60, ...LATENCY_BUCKETS_SECONDS];
  let seed = 7;
  for (let i = 0; values.length < count; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    values.push(10 ** (-6 + (seed / 2 ** 31) * 7.5)); // 1 µs to ~30 s, log-uniform
  }
  return values;
}

test('exposition equals prom-client Histogram for the same observations', async () => {
  const { reference, recorder, referenceRegistry, recorderRegistry } = pair();
  const values = samples(5000);
  // Operations first seen in DeviceOp order (prom-client lists label values in first-seen order); 'trim' never seen.
  const ops = DEVICE_OPERATIONS.filter((op) => op !== 'trim');
  values.forEach((value, i) => {
    const op = ops[i % ops.length]!;
    reference.labels({ op }).observe(value);
    recorder.record(DeviceOp[op], value);
  });
  const expected = await referenceRegistry.metrics();
  const actual = await recorderRegistry.metrics();
  assert.equal(actual, expected);
  assert.ok(!actual.includes('op="trim"'), 'an operation never observed has no series');
  assert.ok(actual.includes(`${NAME}_bucket{le="0.00005",op="read"}`));
  assert.deepEqual(await recorderRegistry.getMetricsAsJSON(), await referenceRegistry.getMetricsAsJSON());

  // Bucket counts, sum and count, checked directly.
  const json = (await recorder.get()).values;
  const read = json.filter((v) => v.labels.op === 'read');
  const readValues = values.filter((_, i) => ops[i % ops.length] === 'read');
  for (const bound of LATENCY_BUCKETS_SECONDS) {
    const bucket = read.find((v) => v.metricName === `${NAME}_bucket` && v.labels.le === bound);
    assert.equal(bucket?.value, readValues.filter((v) => v <= bound).length, `le=${bound}`);
  }
  assert.equal(read.find((v) => v.labels.le === '+Inf')?.value, readValues.length);
  assert.equal(read.find((v) => v.metricName === `${NAME}_count`)?.value, readValues.length);
  assert.equal(read.find((v) => v.metricName === `${NAME}_sum`)?.value, readValues.reduce((a, b) => a + b, 0));
  assert.equal(recorder.count(DeviceOp.read), readValues.length);
});

test('empty, reset and non-finite observations', async () => {
  const { reference, recorder, referenceRegistry, recorderRegistry } = pair();
  assert.equal(await recorderRegistry.metrics(), await referenceRegistry.metrics());
  recorder.record(DeviceOp.write, Number.NaN);
  recorder.record(DeviceOp.write, Number.POSITIVE_INFINITY);
  assert.equal(recorder.count(DeviceOp.write), 0, 'non-finite values are dropped (prom-client throws on them)');
  recorder.record(DeviceOp.flush, 0.003);
  reference.labels({ op: 'flush' }).observe(0.003);
  assert.equal(await recorderRegistry.metrics(), await referenceRegistry.metrics());
  recorderRegistry.resetMetrics();
  referenceRegistry.resetMetrics();
  assert.equal(recorder.count(DeviceOp.flush), 0);
  assert.equal(await recorderRegistry.metrics(), await referenceRegistry.metrics());
  assert.throws(() => new LatencyHistogram(NAME, HELP, 'op', DEVICE_OPERATIONS, [1, 0.5]), /increase/);
});

test('CacheMetrics exposes TimedDevice latencies as histograms', async () => {
  const metrics = new CacheMetrics();
  const device = new TimedDevice(new MemoryDevice(1 << 20), metrics.observers.client);
  const buffer = Buffer.alloc(4096);
  await device.write(buffer, 0);
  await device.read(buffer, 0);
  await device.read(buffer, 4096);
  await device.flush();
  const text = await metrics.metrics();
  assert.ok(text.includes('# TYPE blockcache_request_duration_seconds histogram'));
  assert.ok(text.includes('# TYPE blockcache_cache_device_io_duration_seconds histogram'));
  assert.ok(text.includes('# TYPE blockcache_origin_io_duration_seconds histogram'));
  assert.match(text, /^blockcache_request_duration_seconds_count\{op="read"\} 2$/m);
  assert.match(text, /^blockcache_request_duration_seconds_count\{op="write"\} 1$/m);
  assert.match(text, /^blockcache_request_duration_seconds_bucket\{le="\+Inf",op="flush"\} 1$/m);
  assert.ok(!text.includes('blockcache_cache_device_io_duration_seconds_count'), 'no series before an observation');
  assert.equal(metrics.contentType, new Registry().contentType);
});
