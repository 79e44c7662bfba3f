// Temporary directories for tests: created under the OS temp dir, removed
// recursively by `remove()` (call it in a finally / after hook).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface TempDir {
  readonly path: string;
  /** A path inside the directory. */
  file(name: string): string;
  remove(): Promise<void>;
}

export async function makeTempDir(prefix = 'blockcache-test-'): Promise<TempDir> {
  const directory = await fs.promises.mkdtemp(path.join(os.tmpdir(), prefix));
  return {
    path: directory,
    file: (name) => path.join(directory, name),
    remove: () => fs.promises.rm(directory, { recursive: true, force: true }),
  };
}
