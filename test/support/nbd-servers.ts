// NBD servers for tests: the project's own server in-process over a memory
// device, and Debian's reference servers (nbdkit, qemu-nbd, nbd-server) as
// child processes. Each returns a URI and an idempotent `stop()` that kills only
// the process it started and removes what it created.
import * as fs from 'node:fs';
import { MemoryDevice } from '../../src/devices/memory-device.js';
import { NbdServer } from '../../src/nbd/server.js';
import { BackgroundProcess, describeResult, requireTools, runCommand, spawnBackground } from './process.js';
import { TempDir, makeTempDir } from './temp-dir.js';
import { waitFor, waitForFile, waitForSocket } from './wait.js';

export interface NbdTarget {
  readonly uri: string;
  stop(): Promise<void>;
}

export interface ProcessTarget extends NbdTarget {
  readonly process: BackgroundProcess;
  readonly socketPath: string;
}

const START_TIMEOUT_MS = 15_000;

/** Our server on a MemoryDevice of `sizeBytes`, on a Unix socket in a fresh temp dir. */
export async function startMemoryServer(sizeBytes: number, exportName = ''): Promise<NbdTarget & { server: NbdServer; device: MemoryDevice }> {
  const dir = await makeTempDir('blockcache-nbd-');
  const device = new MemoryDevice(sizeBytes);
  const server = await NbdServer.start({ device, exportName, socketPath: dir.file('nbd.sock') });
  return {
    uri: server.uris[0]!,
    server,
    device,
    async stop() {
      await server.shutdown();
      await dir.remove();
    },
  };
}

async function startProcessTarget(
  dir: TempDir, command: string, args: string[], socketPath: string, uri: string,
): Promise<ProcessTarget> {
  const child = spawnBackground(command, args, { logPath: dir.file(`${command}.log`) });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await child.stop();
    await dir.remove();
  };
  try {
    await Promise.race([
      waitForSocket(socketPath, START_TIMEOUT_MS),
      child.exited.then((code) => { throw new Error(`${command} exited early (${code}):\n${child.output()}`); }),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { uri, process: child, socketPath, stop };
}

/** `nbdkit [extra args] memory SIZE [plugin params]` on a Unix socket. */
export async function startNbdkit(options: { size?: string; before?: string[]; params?: string[] } = {}): Promise<ProcessTarget> {
  await requireTools(['nbdkit']);
  const dir = await makeTempDir('blockcache-nbdkit-');
  const socketPath = dir.file('nbdkit.sock');
  const args = ['-f', '-U', socketPath, ...(options.before ?? []), 'memory', options.size ?? '256M', ...(options.params ?? [])];
  return startProcessTarget(dir, 'nbdkit', args, socketPath, `nbd+unix:///?socket=${socketPath}`);
}

/** `qemu-nbd -k SOCK -f raw -t --shared=16 -x NAME FILE` over a sparse file of `sizeBytes`. */
export async function startQemuNbd(sizeBytes: number, exportName = 'disk'): Promise<ProcessTarget & { imagePath: string }> {
  await requireTools(['qemu-nbd']);
  const dir = await makeTempDir('blockcache-qemu-nbd-');
  const imagePath = dir.file('disk.img');
  await fs.promises.writeFile(imagePath, '');
  await fs.promises.truncate(imagePath, sizeBytes);
  const socketPath = dir.file('qemu-nbd.sock');
  const args = ['-k', socketPath, '-f', 'raw', '-t', '--shared=16', '-x', exportName, imagePath];
  const target = await startProcessTarget(dir, 'qemu-nbd', args, socketPath,
    `nbd+unix:///${encodeURIComponent(exportName)}?socket=${socketPath}`);
  return { ...target, imagePath };
}

/**
 * nbd-server 3.24 on a Unix socket with a config per nbd-conformance.md §I. Its
 * `-d` (no fork) mode serves a single connection and exits, so it runs as a
 * daemon with a pid file and `stop()` kills that pid.
 */
export async function startNbdServer(sizeBytes: number, exportName = 'disk'): Promise<NbdTarget & { imagePath: string; socketPath: string }> {
  await requireTools(['nbd-server']);
  const dir = await makeTempDir('blockcache-nbd-server-');
  const imagePath = dir.file('disk.img');
  await fs.promises.writeFile(imagePath, '');
  await fs.promises.truncate(imagePath, sizeBytes);
  const socketPath = dir.file('nbd-server.sock');
  const pidPath = dir.file('nbd-server.pid');
  const config = [
    '[generic]', 'user = root', 'group = root', `unixsock = ${socketPath}`, 'allowlist = true', '',
    `[${exportName}]`, `exportname = ${imagePath}`, 'trim = true', 'flush = true', 'fua = true', '',
  ].join('\n');
  const configPath = dir.file('config');
  await fs.promises.writeFile(configPath, config);
  let pid = -1;
  const stop = async (): Promise<void> => {
    if (pid > 0) {
      try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
      await waitFor(`nbd-server ${pid} to exit`, () => !isAlive(pid), 10_000).catch(() => {
        try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
      });
      pid = -1;
    }
    await dir.remove();
  };
  try {
    const result = await runCommand('nbd-server', ['-C', configPath, '-p', pidPath], { timeoutMs: START_TIMEOUT_MS });
    if (result.code !== 0) throw new Error(describeResult('nbd-server', result));
    await waitForFile(pidPath, START_TIMEOUT_MS);
    pid = Number(fs.readFileSync(pidPath, 'utf8').trim());
    await waitFor(`socket ${socketPath}`, () => fs.existsSync(socketPath), START_TIMEOUT_MS);
  } catch (error) {
    await stop();
    throw error;
  }
  return { uri: `nbd+unix:///${encodeURIComponent(exportName)}?socket=${socketPath}`, imagePath, socketPath, stop };
}

/** True while `pid` runs (a zombie counts as gone). */
function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}
