// Unit tests of the settings parsers: documented forms parse, bad values throw BAD_ARGUMENT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRate, parseAssignments, parseDurationMs, parseRate } from './settings.js';
import { SequentialDetector } from '../cache/sequential-detector.js';
import { RateLimiter } from '../cache/rate-limiter.js';

test('writeback-rate forms', () => {
  assert.deepEqual(parseRate('r', '0'), { bytesPerSecond: 0, iops: 0 });
  assert.deepEqual(parseRate('r', '20M'), { bytesPerSecond: 20 * 2 ** 20, iops: 0 });
  assert.deepEqual(parseRate('r', '20MiB/s'), { bytesPerSecond: 20 * 2 ** 20, iops: 0 });
  assert.deepEqual(parseRate('r', 'iops=500'), { bytesPerSecond: 0, iops: 500 });
  assert.deepEqual(parseRate('r', '20M,iops=500'), { bytesPerSecond: 20 * 2 ** 20, iops: 500 });
  assert.equal(formatRate(parseRate('r', '20M,iops=500')), '20M/s,iops=500');
  for (const bad of ['fast', '1K', '20M,20M', 'iops=', '']) assert.throws(() => parseRate('r', bad), { code: 'BAD_ARGUMENT' });
});

test('durations and assignments', () => {
  assert.equal(parseDurationMs('d', '30s'), 30_000);
  assert.equal(parseDurationMs('d', '5m'), 300_000);
  assert.equal(parseDurationMs('d', '2'), 2000);
  assert.equal(parseDurationMs('d', 'off'), 0);
  assert.throws(() => parseDurationMs('d', '10ms'), { code: 'BAD_ARGUMENT' });
  // dirty-pace's bounds: 1s..1h, and the message says them.
  assert.equal(parseDurationMs('dirty-pace', '30s', 1000, 3_600_000), 30_000);
  assert.equal(parseDurationMs('dirty-pace', 'off', 1000, 3_600_000), 0);
  for (const bad of ['500ms', '2h', 'slow']) {
    assert.throws(() => parseDurationMs('dirty-pace', bad, 1000, 3_600_000), (error: Error) => /from 1s to 1h/.test(error.message));
  }
  assert.deepEqual(parseAssignments('a=1\nb = 2\n'), [['a', '1'], ['b', '2']]);
  assert.deepEqual(parseAssignments('{"a": 1}'), [['a', '1']]);
  assert.throws(() => parseAssignments('nokey'), { code: 'BAD_ARGUMENT' });
});

test('a stream reaches the cutoff; a random pattern does not', () => {
  const detector = new SequentialDetector();
  const results: boolean[] = [];
  for (let i = 0; i < 20; i++) results.push(detector.observe(i * 65536, 65536, 1024 * 1024));
  assert.equal(results.indexOf(true), 15);
  const random = new SequentialDetector();
  let bypassed = 0;
  for (let i = 0; i < 200; i++) if (random.observe(((i * 7919) % 1000) * 64 * 2 ** 20, 4096, 1024 * 1024)) bypassed++;
  assert.equal(bypassed, 0);
  assert.equal(new SequentialDetector().observe(0, 2 ** 30, 0), false, 'cutoff 0 is off');
});

test('wouldReach answers what observe would, and records nothing', () => {
  const detector = new SequentialDetector();
  const twin = new SequentialDetector();
  // Two interleaved streams and scattered requests: each answer is observe's, and asking changes nothing.
  for (let i = 0; i < 300; i++) {
    const offset = i % 3 === 2 ? ((i * 7919) % 1000) * 64 * 2 ** 20 : (i % 3) * 2 ** 32 + i * 16384;
    const predicted = detector.wouldReach(offset, 16384, 1024 * 1024);
    assert.equal(detector.wouldReach(offset, 16384, 1024 * 1024), predicted, 'asking twice');
    assert.equal(detector.observe(offset, 16384, 1024 * 1024), predicted, `request ${i}`);
    assert.equal(twin.observe(offset, 16384, 1024 * 1024), predicted, `request ${i}: the detector that was never asked agrees`);
  }
  assert.equal(detector.wouldReach(0, 2 ** 30, 0), false, 'cutoff 0 is off');
});

test('the rate limiter holds its long-run rate', () => {
  const limiter = new RateLimiter(1024 * 1024, 0);
  let now = 0;
  let bytes = 0;
  while (now < 10_000) {
    const delay = limiter.delayMs(now);
    if (delay > 0) { now += delay; continue; }
    limiter.take(65536, now);
    bytes += 65536;
  }
  assert.ok(bytes <= 10 * 1024 * 1024 + 65536 + 0.1 * 1024 * 1024, `${bytes}`);
  assert.ok(bytes >= 9 * 1024 * 1024);
});

test('commit-interval takes a duration and never off', () => {
  assert.equal(parseDurationMs('commit-interval', '2s', 1000, 600_000, false), 2000);
  for (const bad of ['0', 'off', '500ms', '11m', 'often']) {
    assert.throws(() => parseDurationMs('commit-interval', bad, 1000, 600_000, false),
      (error: Error) => /^commit-interval: .*expected a duration from 1s to 10m/.test(error.message));
  }
});
