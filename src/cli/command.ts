// The shape every CLI command has, and the argument helpers they share.
// Commands throw UsageError (exit 2) or BlockcacheError (exit 1); main.ts turns
// both into one line on stderr. Nothing here prints a stack trace.
import { parseArgs, ParseArgsConfig } from 'node:util';

export interface Command {
  readonly name: string;
  /** One line for `blockcache --help`. */
  readonly summary: string;
  /** Full `--help` text: usage line, then one line per option. */
  readonly help: string;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs in strict mode, with errors turned into one-line UsageErrors. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function parseOptions(argv: string[], options: Options, allowPositionals = false): { values: Record<string, any>; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]!.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
}

const SIZE_PATTERN = /^(\d+)([KMGT]?)(i?B)?$/i;
const SIZE_FACTORS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Parses a size such as 4096, 4K, 64M, 1G (powers of 1024). */
export function parseSize(text: string, what: string): number {
  const match = SIZE_PATTERN.exec(text.trim());
  if (!match) throw new UsageError(`${what}: '${text}' is not a size (examples: 4096, 4K, 64M, 1G)`);
  const value = Number(match[1]) * SIZE_FACTORS[match[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(value)) throw new UsageError(`${what}: '${text}' is too large`);
  return value;
}

/** Parses a non-negative integer option. */
export function parseCount(text: string, what: string, minimum = 0, maximum = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${what}: '${text}' is not a whole number`);
  const value = Number(text);
  if (value < minimum || value > maximum) throw new UsageError(`${what}: ${value} is out of range (${minimum}..${maximum})`);
  return value;
}

/** Throws a UsageError unless `value` was given. */
export function required<T>(value: T | undefined, option: string): T {
  if (value === undefined || value === '') throw new UsageError(`missing required option ${option}`);
  return value;
}
