// Where the shared real traces live for the simulator tests: ../shared/traces
// next to the repository (override with BLOCKCACHE_TRACES).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/sim). */
export const REPOSITORY_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const TRACES_DIRECTORY = process.env.BLOCKCACHE_TRACES ?? resolve(REPOSITORY_ROOT, '..', 'shared', 'traces');

export function tracePath(name: string): string {
  return join(TRACES_DIRECTORY, name);
}

export function haveTrace(name: string): boolean {
  return existsSync(tracePath(name));
}
