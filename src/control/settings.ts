// Runtime settings of a running cache: one table of keys, each with its
// syntax, parser (range-checked), formatter and applier. Used by the control
// endpoint (GET/POST /settings), `blockcache set` and `serve --set`.
//
// Syntax (also in `blockcache set --help`):
//   dirty-threshold=PERCENT        0..100, optional '%'            (default 20)
//   dirty-max-age=DURATION         0/off, or 100ms..7d; units ms s m h d, bare number = seconds (default 15m)
//   dirty-pace=DURATION            0/off, or 1s..1h: while clients are busy, threshold cleaning
//                                  writes back the excess at excess/DURATION per second (default 30s)
//   writeback-rate=RATE            0/unlimited, SIZE[/s] (K M G: powers of 1024, optional iB),
//                                  iops=N, or both: 20M,iops=500
//   writeback-concurrency=N        1..256 origin writes in flight  (default 8)
//   commit-interval=DURATION       1s..10m: metadata is committed at least this often; each
//                                  commit flushes the cache device            (default 5s)
//   sequential-cutoff=SIZE         0/off, or 4K..64G               (default off)
//   readahead=SIZE                 0/off, or 8K..4M: a read miss also fetches the cold blocks around
//                                  it in this aligned window, into free cache slots only (default 128K)
//   ram-cache=SIZE                 0/off, or up to 64G             (default: serve --ram-cache, 64M)
//   policy=NAME                    one of the online policies
//   mode=MODE                      writeback | writethrough | writearound
//                                  (leaving writeback flushes first; the call returns when done)
//
// Every value of a request is parsed before any is applied, so a bad value
// changes nothing. Changes are serialised per engine (a mode switch can take a
// while). Errors are BlockcacheError('BAD_ARGUMENT') with a message naming the
// key, the bad value and what is valid.
import type { CacheEngine } from '../cache/engine.js';
import { CACHE_MODES, CacheMode } from '../format/superblock.js';
import { POLICY_NAMES } from '../policies/registry.js';
import { BlockcacheError } from '../stdx/errors.js';
import { RAM_CACHE_BYTES_MAX, READAHEAD_BYTES_MAX, WRITEBACK_CONCURRENCY_MAX } from '../constants.js';

const KiB = 1024;
const SIZE_FACTORS: Record<string, number> = { '': 1, K: KiB, M: KiB ** 2, G: KiB ** 3, T: KiB ** 4 };
const DURATION_FACTORS_MS: Record<string, number> = { ms: 1, s: 1000, '': 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DIRTY_MAX_AGE_MS_MIN = 100;
const DIRTY_MAX_AGE_MS_MAX = 7 * 86_400_000;
const DIRTY_PACE_MS_MIN = 1000;
const DIRTY_PACE_MS_MAX = 3_600_000;
/** Commits more often than this cost a cache-device flush each for little warmth; rarer ones keep cleaned slots unusable long. */
const COMMIT_INTERVAL_MS_MIN = 1000;
const COMMIT_INTERVAL_MS_MAX = 600_000;
const SEQUENTIAL_CUTOFF_BYTES_MIN = 4 * KiB;
const SEQUENTIAL_CUTOFF_BYTES_MAX = 64 * KiB ** 3;
/** A window of one 4 KiB block fetches nothing more; two is the least that reads ahead. */
const READAHEAD_BYTES_MIN = 8 * KiB;
const RATE_BYTES_MIN = 4 * KiB;
const RATE_BYTES_MAX = KiB ** 4;
const RATE_IOPS_MAX = 10_000_000;

export interface WritebackRate {
  readonly bytesPerSecond: number;
  readonly iops: number;
}

interface Setting<T> {
  readonly key: string;
  readonly syntax: string;
  readonly description: string;
  parse(text: string): T;
  format(value: T): string;
  read(engine: CacheEngine): T;
  apply(engine: CacheEngine, value: T): void | Promise<void>;
}

function bad(key: string, text: string, expected: string): BlockcacheError {
  return new BlockcacheError('BAD_ARGUMENT', `${key}: '${text}' is not valid (expected ${expected})`);
}

export function parseSizeValue(key: string, text: string, expected: string): number {
  const match = /^(\d+)([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!match) throw bad(key, text, expected);
  const value = Number(match[1]) * SIZE_FACTORS[match[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(value)) throw bad(key, text, expected);
  return value;
}

/** A size in the largest unit that divides it exactly (parses back to the same value). */
export function formatSizeValue(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'K']) {
    const factor = SIZE_FACTORS[unit]!;
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return String(bytes);
}

/** 0 (or 'off'), or a size from `minimum` to `maximum`. */
function parseSizeOrOff(key: string, text: string, minimum: number, maximum: number): number {
  const expected = `0/off or a size from ${formatSizeValue(minimum)} to ${formatSizeValue(maximum)}`;
  if (text.trim().toLowerCase() === 'off') return 0;
  const value = parseSizeValue(key, text, expected);
  return value === 0 ? 0 : inRange(key, text, value, minimum, maximum, expected);
}

function inRange(key: string, text: string, value: number, minimum: number, maximum: number, expected: string): number {
  if (!(value >= minimum && value <= maximum)) throw bad(key, text, expected);
  return value;
}

/** A duration from `minimumMs` to `maximumMs`, or 0 for '0'/'off' when `offAllowed`. */
export function parseDurationMs(key: string, text: string, minimumMs = DIRTY_MAX_AGE_MS_MIN, maximumMs = DIRTY_MAX_AGE_MS_MAX, offAllowed = true): number {
  const expected = `${offAllowed ? '0/off or ' : ''}a duration from ${formatDurationMs(minimumMs)} to ${formatDurationMs(maximumMs)}, e.g. 30s, 5m, 1h`;
  const trimmed = text.trim().toLowerCase();
  if (trimmed === 'off' || trimmed === '0') {
    if (!offAllowed) throw bad(key, text, expected);
    return 0;
  }
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|)$/.exec(trimmed);
  if (!match) throw bad(key, text, expected);
  const value = Math.round(Number(match[1]) * DURATION_FACTORS_MS[match[2]!]!);
  return inRange(key, text, value, minimumMs, maximumMs, expected);
}

export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0';
  for (const unit of ['d', 'h', 'm', 's']) {
    const factor = DURATION_FACTORS_MS[unit]!;
    if (ms % factor === 0) return `${ms / factor}${unit}`;
  }
  return `${ms}ms`;
}

export function parseRate(key: string, text: string): WritebackRate {
  const expected = '0/unlimited, SIZE[/s] such as 20M or 20MiB/s, iops=N, or both: 20M,iops=500';
  const trimmed = text.trim().toLowerCase();
  if (trimmed === '0' || trimmed === 'unlimited') return { bytesPerSecond: 0, iops: 0 };
  let bytesPerSecond: number | undefined;
  let iops: number | undefined;
  for (const part of trimmed.split(',').map((item) => item.trim())) {
    const iopsMatch = /^iops=(\d+)$/.exec(part);
    if (iopsMatch && iops === undefined) {
      iops = inRange(key, text, Number(iopsMatch[1]), 0, RATE_IOPS_MAX, `iops from 0 to ${RATE_IOPS_MAX}`);
      continue;
    }
    if (bytesPerSecond !== undefined || iopsMatch || part === '') throw bad(key, text, expected);
    const size = part.replace(/^bytes=/, '').replace(/\/s$/, '');
    bytesPerSecond = parseSizeValue(key, size, expected);
    if (bytesPerSecond !== 0) inRange(key, text, bytesPerSecond, RATE_BYTES_MIN, RATE_BYTES_MAX, 'a byte rate from 4K/s to 1T/s, or 0');
  }
  return { bytesPerSecond: bytesPerSecond ?? 0, iops: iops ?? 0 };
}

export function formatRate(rate: WritebackRate): string {
  const parts: string[] = [];
  if (rate.bytesPerSecond > 0) parts.push(`${formatSizeValue(rate.bytesPerSecond)}/s`);
  if (rate.iops > 0) parts.push(`iops=${rate.iops}`);
  return parts.length === 0 ? '0' : parts.join(',');
}

function parseInteger(key: string, text: string, minimum: number, maximum: number, suffix = ''): number {
  const expected = `a whole number from ${minimum} to ${maximum}${suffix}`;
  const match = new RegExp(`^(\\d+)${suffix ? `${suffix}?` : ''}$`).exec(text.trim());
  if (!match) throw bad(key, text, expected);
  return inRange(key, text, Number(match[1]), minimum, maximum, expected);
}

function parseChoice<T extends string>(key: string, text: string, choices: readonly T[]): T {
  const value = text.trim() as T;
  if (!choices.includes(value)) throw bad(key, text, `one of ${choices.join(', ')}`);
  return value;
}

/** A number among the cleaner's settings: read from it, and applied by re-arming the cleaner. */
type CleanerNumber = 'dirtyThresholdPercent' | 'dirtyMaxAgeMs' | 'dirtyPaceMs' | 'writebackConcurrency';
function cleanerNumber(field: CleanerNumber): Pick<Setting<number>, 'read' | 'apply'> {
  return {
    read: (engine) => engine.cleaner.settings[field],
    apply: (engine, value) => {
      engine.cleaner.settings[field] = value;
      engine.cleaner.applySettings();
    },
  };
}

const SETTINGS: ReadonlyArray<Setting<never>> = [
  {
    key: 'dirty-threshold', syntax: 'PERCENT (0..100)',
    description: 'background writeback brings dirty blocks down to this share of the cache (paced while clients are busy: dirty-pace)',
    parse: (text) => parseInteger('dirty-threshold', text, 0, 100, '%'),
    format: (value: number) => String(value),
    ...cleanerNumber('dirtyThresholdPercent'),
  } satisfies Setting<number>,
  {
    key: 'dirty-max-age', syntax: 'DURATION (0/off, 100ms..7d: 30s, 5m, 1h)',
    description: 'blocks dirty longer than this are written back while clients are idle',
    parse: (text) => parseDurationMs('dirty-max-age', text),
    format: formatDurationMs,
    ...cleanerNumber('dirtyMaxAgeMs'),
  } satisfies Setting<number>,
  {
    key: 'dirty-pace', syntax: 'DURATION (0/off, 1s..1h)',
    description: 'while clients are busy, cleaning above the threshold writes back excess/DURATION per second (at least 1 MiB/s); full speed when clients are idle or dirty blocks pass half-way to a full cache',
    parse: (text) => parseDurationMs('dirty-pace', text, DIRTY_PACE_MS_MIN, DIRTY_PACE_MS_MAX),
    format: formatDurationMs,
    ...cleanerNumber('dirtyPaceMs'),
  } satisfies Setting<number>,
  {
    key: 'writeback-rate', syntax: 'RATE (0/unlimited, 20M, 20MiB/s, iops=500, 20M,iops=500)',
    description: 'cap on background writeback toward the origin (flush and room-making are not capped)',
    parse: (text) => parseRate('writeback-rate', text),
    format: formatRate,
    read: (engine) => ({ bytesPerSecond: engine.cleaner.settings.writebackRateBytesPerSecond, iops: engine.cleaner.settings.writebackRateIops }),
    apply: (engine, value: WritebackRate) => {
      engine.cleaner.settings.writebackRateBytesPerSecond = value.bytesPerSecond;
      engine.cleaner.settings.writebackRateIops = value.iops;
      engine.cleaner.applySettings();
    },
  } satisfies Setting<WritebackRate>,
  {
    key: 'writeback-concurrency', syntax: `N (1..${WRITEBACK_CONCURRENCY_MAX})`,
    description: 'coalesced origin writes in flight at once (one while clients are busy)',
    parse: (text) => parseInteger('writeback-concurrency', text, 1, WRITEBACK_CONCURRENCY_MAX),
    format: (value: number) => String(value),
    ...cleanerNumber('writebackConcurrency'),
  } satisfies Setting<number>,
  {
    key: 'commit-interval', syntax: 'DURATION (1s..10m)',
    description: 'cache fills, cleaned blocks and writes no FLUSH covered are committed to the cache device at least this often (a crash forgets at most this much warmth); each commit flushes the cache device',
    parse: (text) => parseDurationMs('commit-interval', text, COMMIT_INTERVAL_MS_MIN, COMMIT_INTERVAL_MS_MAX, false),
    format: formatDurationMs,
    read: (engine) => engine.commitIntervalMs,
    apply: (engine, value: number) => engine.setCommitInterval(value),
  } satisfies Setting<number>,
  {
    key: 'sequential-cutoff', syntax: 'SIZE (0/off, 4K..64G)',
    description: 'request streams at least this long bypass the cache',
    parse: (text) => parseSizeOrOff('sequential-cutoff', text, SEQUENTIAL_CUTOFF_BYTES_MIN, SEQUENTIAL_CUTOFF_BYTES_MAX),
    format: (value: number) => formatSizeValue(value),
    read: (engine) => engine.sequentialCutoffBytes,
    apply: (engine, value: number) => engine.setSequentialCutoff(value),
  } satisfies Setting<number>,
  {
    key: 'readahead', syntax: `SIZE (0/off, ${formatSizeValue(READAHEAD_BYTES_MIN)}..${formatSizeValue(READAHEAD_BYTES_MAX)})`,
    description: 'a read miss also fetches the cold blocks around it within an aligned window of this size, into free cache slots only',
    parse: (text) => parseSizeOrOff('readahead', text, READAHEAD_BYTES_MIN, READAHEAD_BYTES_MAX),
    format: (value: number) => formatSizeValue(value),
    read: (engine) => engine.readaheadBytes,
    apply: (engine, value: number) => engine.setReadahead(value),
  } satisfies Setting<number>,
  {
    key: 'ram-cache', syntax: 'SIZE (0/off, or one cache block..64G)',
    description: 'RAM tier above the SSD tier; resizing pushes dirty RAM pages down and starts it empty',
    parse: (text) => {
      const expected = '0/off or a size up to 64G (at least one cache block)';
      if (text.trim().toLowerCase() === 'off') return 0;
      return inRange('ram-cache', text, parseSizeValue('ram-cache', text, expected), 0, RAM_CACHE_BYTES_MAX, expected);
    },
    format: (value: number) => formatSizeValue(value),
    read: (engine) => engine.ramBytes,
    apply: (engine, value: number) => engine.setRamBytes(value),
  } satisfies Setting<number>,
  {
    key: 'policy', syntax: `NAME (${POLICY_NAMES.join(', ')})`,
    description: 'replacement policy; switching keeps every cached block; persisted',
    parse: (text) => parseChoice('policy', text, POLICY_NAMES),
    format: (value: string) => value,
    read: (engine) => engine.policy.name,
    apply: (engine, value: string) => engine.setPolicy(value),
  } satisfies Setting<string>,
  {
    key: 'mode', syntax: `MODE (${CACHE_MODES.join(', ')})`,
    description: 'write mode; leaving writeback writes every dirty block back first; persisted',
    parse: (text) => parseChoice('mode', text, CACHE_MODES),
    format: (value: CacheMode) => value,
    read: (engine) => engine.mode,
    apply: (engine, value: CacheMode) => engine.setMode(value),
  } satisfies Setting<CacheMode>,
] as unknown as ReadonlyArray<Setting<never>>;

export const SETTING_KEYS: readonly string[] = SETTINGS.map((setting) => setting.key);

/** Help text: one line per setting. */
export function settingsHelp(): string {
  const width = Math.max(...SETTINGS.map((setting) => setting.key.length));
  return SETTINGS.map((setting) => `  ${setting.key.padEnd(width)}  ${setting.syntax}\n  ${' '.repeat(width)}  ${setting.description}`).join('\n');
}

function find(key: string): Setting<never> {
  const setting = SETTINGS.find((candidate) => candidate.key === key);
  if (!setting) throw new BlockcacheError('BAD_ARGUMENT', `unknown setting '${key}' (settings: ${SETTING_KEYS.join(', ')})`);
  return setting;
}

/** Current values, formatted as they would be set. */
export function readSettings(engine: CacheEngine): Record<string, string> {
  const values: Record<string, string> = {};
  for (const setting of SETTINGS) values[setting.key] = setting.format(setting.read(engine) as never);
  return values;
}

/** Parses `KEY=VALUE` items (lines or words) or a JSON object into key/value text pairs. */
export function parseAssignments(body: string): Array<[string, string]> {
  const trimmed = body.trim();
  if (trimmed.startsWith('{')) {
    let object: unknown;
    try {
      object = JSON.parse(trimmed);
    } catch (error) {
      throw new BlockcacheError('BAD_ARGUMENT', `settings body is not valid JSON: ${(error as Error).message}`);
    }
    if (object === null || typeof object !== 'object' || Array.isArray(object)) throw new BlockcacheError('BAD_ARGUMENT', 'settings JSON must be an object');
    return Object.entries(object as Record<string, unknown>).map(([key, value]) => {
      if (typeof value !== 'string' && typeof value !== 'number') throw new BlockcacheError('BAD_ARGUMENT', `${key}: the value must be a string or a number`);
      return [key, String(value)];
    });
  }
  const items = trimmed.split(/\s*\n\s*/).filter((line) => line !== '' && !line.startsWith('#'));
  return items.map((item) => {
    const equals = item.indexOf('=');
    if (equals <= 0) throw new BlockcacheError('BAD_ARGUMENT', `'${item}' is not KEY=VALUE (settings: ${SETTING_KEYS.join(', ')})`);
    return [item.slice(0, equals).trim(), item.slice(equals + 1).trim()];
  });
}

const chains = new WeakMap<CacheEngine, Promise<unknown>>();

/**
 * Validates every assignment, then applies them in order (serialised per
 * engine). Resolves with the settings after the change.
 */
export async function applySettings(engine: CacheEngine, assignments: ReadonlyArray<readonly [string, string]>): Promise<Record<string, string>> {
  if (assignments.length === 0) throw new BlockcacheError('BAD_ARGUMENT', `no settings given (settings: ${SETTING_KEYS.join(', ')})`);
  const parsed = assignments.map(([key, text]) => {
    const setting = find(key);
    return { setting, value: setting.parse(text) };
  });
  const previous = chains.get(engine) ?? Promise.resolve();
  const next = previous.catch(() => {}).then(async () => {
    for (const { setting, value } of parsed) await setting.apply(engine, value);
    return readSettings(engine);
  });
  chains.set(engine, next);
  return next;
}
