// Assertions for programmer errors: always on, never caught. Operating errors
// (bad input, I/O failure, corrupt devices) are typed `BlockcacheError`s instead.

export class AssertionError extends Error {
  override name = 'AssertionError';
}

export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Marks a branch the type system says cannot happen. */
export function unreachable(value: never, what = 'value'): never {
  throw new AssertionError(`unreachable ${what}: ${String(value)}`);
}

export function isPowerOfTwo(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0 && 2 ** Math.round(Math.log2(value)) === value;
}

export function log2Exact(value: number): number {
  assert(isPowerOfTwo(value), `not a power of two: ${value}`);
  return Math.round(Math.log2(value));
}
