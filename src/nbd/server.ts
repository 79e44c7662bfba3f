// The NBD server: listens on a Unix socket and/or TCP, serves one BlockDevice as
// one export (its configured name, with '' accepted as the default export).
//
// Responsibilities: listening (Unix socket mode 0600, stale-socket removal only
// when nothing answers on it), accepting up to NBD_CONNECTIONS_MAX connections,
// and graceful shutdown. Everything per connection lives in ServerConnection.
//
// Invariants: a failing connection only ever closes itself; shutdown stops
// accepting first, then answers new options with ERR_SHUTDOWN and new requests
// with ESHUTDOWN, waits for in-flight requests, and only then closes sockets.
//
// Concurrency: all connections share the device; a device flush is global, which
// is what CAN_MULTI_CONN promises (see docs/NBD_EXPORT.md).
import * as fs from 'node:fs';
import * as net from 'node:net';
import { NBD_CONNECTIONS_MAX, NBD_HANDSHAKE_TIMEOUT_MS } from '../constants.js';
import { BlockDevice } from '../devices/block-device.js';
import { assert } from '../stdx/assert.js';
import { BlockcacheError } from '../stdx/errors.js';
import { ServerConnection } from './server-connection.js';
import { ExportConfig } from './server-handshake.js';

export interface NbdServerOptions {
  device: BlockDevice;
  /** Export name; default ''. The empty name is always accepted as the default export. */
  exportName?: string;
  description?: string;
  socketPath?: string;
  listen?: { host: string; port: number };
  readOnly?: boolean;
  log?: (line: string) => void;
  /** Default NBD_HANDSHAKE_TIMEOUT_MS. */
  handshakeTimeoutMs?: number;
  /**
   * Default true: each connection reads into its own reused buffer, and large WRITE
   * payloads straight from the socket (src/nbd/socket-adoption.ts). False: through
   * 'data' events, as where Node does not let a server choose its read buffers.
   */
  ownReadBuffers?: boolean;
}

/** Owner-only permissions for the Unix socket. */
const SOCKET_MODE = 0o600;
const SOCKET_UMASK = 0o177;
/** How long we probe a leftover socket file before deciding nothing listens on it. */
const STALE_SOCKET_PROBE_MS = 1000;

export class NbdServer {
  readonly uris: string[] = [];
  private readonly servers: net.Server[] = [];
  private readonly connections = new Set<ServerConnection>();
  private shutdownPromise: Promise<void> | null = null;

  private constructor(
    private readonly options: NbdServerOptions,
    private readonly config: ExportConfig,
    private readonly log: (line: string) => void,
  ) {}

  static async start(options: NbdServerOptions): Promise<NbdServer> {
    if (options.socketPath === undefined && options.listen === undefined) {
      throw new BlockcacheError('BAD_ARGUMENT', 'nbd server: give a socket path or a listen address');
    }
    const device = options.device;
    assert(Number.isSafeInteger(device.sizeBytes) && device.sizeBytes >= 0, 'device size');
    const config: ExportConfig = {
      name: options.exportName ?? '',
      description: options.description,
      sizeBytes: device.sizeBytes,
      readOnly: options.readOnly ?? false,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? NBD_HANDSHAKE_TIMEOUT_MS,
    };
    if (Buffer.byteLength(config.name) > 4096) throw new BlockcacheError('BAD_ARGUMENT', 'export name longer than 4096 bytes');
    const server = new NbdServer(options, config, options.log ?? (() => {}));
    try {
      if (options.socketPath !== undefined) await server.listenUnix(options.socketPath);
      if (options.listen !== undefined) await server.listenTcp(options.listen.host, options.listen.port);
    } catch (error) {
      await server.shutdown();
      throw error;
    }
    return server;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Stops accepting, fails new work with ESHUTDOWN, waits for in-flight requests, closes. */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= this.runShutdown();
    return this.shutdownPromise;
  }

  private async runShutdown(): Promise<void> {
    const closed = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const connection of this.connections) connection.beginShutdown();
    await Promise.all([...this.connections].map((connection) => connection.whenIdle()));
    const gone = [...this.connections].map((connection) => new Promise<void>((resolve) => {
      connection.close();
      connection.onGone(resolve);
    }));
    await Promise.all(gone);
    await Promise.all(closed);
    if (this.options.socketPath !== undefined) removeQuietly(this.options.socketPath);
  }

  private createServer(): net.Server {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.accept(socket));
    server.maxConnections = NBD_CONNECTIONS_MAX;
    server.on('error', (error) => this.log(`nbd: listener error: ${error.message}`));
    this.servers.push(server);
    return server;
  }

  private accept(socket: net.Socket): void {
    if (this.shutdownPromise !== null) {
      socket.destroy();
      return;
    }
    if (socket.remoteFamily !== undefined) socket.setNoDelay(true);
    const connection = new ServerConnection(socket, this.options.device, this.config, this.log,
      (closed) => this.connections.delete(closed), this.options.ownReadBuffers ?? true);
    this.connections.add(connection);
    void connection.start();
  }

  private async listenUnix(socketPath: string): Promise<void> {
    await removeStaleSocket(socketPath);
    const server = this.createServer();
    // The socket file is created inside listen(); a umask makes it 0600 from birth.
    const previousUmask = process.umask(SOCKET_UMASK);
    try {
      await listenOn(server, { path: socketPath });
    } finally {
      process.umask(previousUmask);
    }
    fs.chmodSync(socketPath, SOCKET_MODE);
    this.uris.push(`nbd+unix:///${encodeURIComponent(this.config.name)}?socket=${encodeURI(socketPath)}`);
  }

  private async listenTcp(host: string, port: number): Promise<void> {
    const server = this.createServer();
    await listenOn(server, { host, port });
    const address = server.address();
    assert(address !== null && typeof address === 'object');
    const hostPart = address.family === 'IPv6' || host.includes(':') ? `[${host}]` : host;
    this.uris.push(`nbd://${hostPart}:${address.port}/${encodeURIComponent(this.config.name)}`);
  }
}

function listenOn(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(new BlockcacheError('DEVICE_OPEN', `nbd server: cannot listen: ${error.message}`));
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Removes a leftover socket file, but only if it is a socket and nothing answers on it. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new BlockcacheError('DEVICE_OPEN', `nbd server: ${socketPath} exists and is not a socket`);
  const answered = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path: socketPath });
    const timer = setTimeout(() => { probe.destroy(); resolve(true); }, STALE_SOCKET_PROBE_MS);
    probe.once('connect', () => { clearTimeout(timer); probe.destroy(); resolve(true); });
    probe.once('error', () => { clearTimeout(timer); resolve(false); });
  });
  if (answered) throw new BlockcacheError('DEVICE_OPEN', `nbd server: ${socketPath} is in use by another server`);
  removeQuietly(socketPath);
}

function removeQuietly(path: string): void {
  try {
    fs.unlinkSync(path);
  } catch {
    // Already gone.
  }
}
