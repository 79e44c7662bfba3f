// Bounded waiting for tests: every wait has a timeout and says what it waited for.
import * as fs from 'node:fs';
import * as net from 'node:net';

const POLL_MS = 50;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns true; throws after `timeoutMs`. */
export async function waitFor(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

/** True when something accepts connections at the Unix socket path or TCP address. */
export function canConnect(address: string | { host: string; port: number }): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = typeof address === 'string' ? net.connect({ path: address }) : net.connect(address);
    const timer = setTimeout(() => { socket.destroy(); resolve(false); }, 1000);
    socket.once('connect', () => { clearTimeout(timer); socket.destroy(); resolve(true); });
    socket.once('error', () => { clearTimeout(timer); resolve(false); });
  });
}

export function waitForSocket(address: string | { host: string; port: number }, timeoutMs = 10_000): Promise<void> {
  const what = typeof address === 'string' ? `socket ${address}` : `${address.host}:${address.port}`;
  return waitFor(what, () => canConnect(address), timeoutMs);
}

export function waitForFile(path: string, timeoutMs = 10_000): Promise<void> {
  return waitFor(`file ${path}`, () => fs.existsSync(path) && fs.statSync(path).size > 0, timeoutMs);
}

/** Rejects if `promise` does not settle within `timeoutMs`. */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A free TCP port on 127.0.0.1 (bound and released; fine for tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
