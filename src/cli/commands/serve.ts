// blockcache serve: open a cache (recovering after a crash), check its origin,
// serve the cached device over NBD, and expose the control endpoint.
import * as path from 'node:path';
import { Command, parseOptions, parseSize, required, UsageError } from '../command.js';
import { RAM_CACHE_BYTES_DEFAULT, RAM_CACHE_BYTES_MAX } from '../../constants.js';
import { openDevice, OpenedDevice } from '../../devices/open-device.js';
import { openCache } from '../../cache/open-cache.js';
import { CacheEngine } from '../../cache/engine.js';
import { readSuperblock } from '../../metadata/metadata-store.js';
import { NbdServer } from '../../nbd/server.js';
import { ControlServer } from '../../control/control-server.js';
import { engineStatus } from '../../control/status.js';
import { CacheMetrics } from '../../control/metrics.js';
import { FileDevice } from '../../devices/file-device.js';
import { applySettings, parseAssignments, readSettings } from '../../control/settings.js';
import { TimedDevice } from '../../layers/timed-device.js';
import { BlockcacheError } from '../../stdx/errors.js';
import { formatBytes } from '../human.js';

const HELP = `usage: blockcache serve --cache DEV [options]

Opens the cache on DEV (recovering after a crash), checks that its origin is the
one it was created for, and serves the cached device over NBD. Prints one line
'ready URI' on stdout when clients may connect. SIGINT/SIGTERM stop it cleanly:
in-flight requests finish, metadata is committed, dirty blocks stay cached.

  --cache DEV            the cache device (path or NBD URI)
  --socket PATH          serve on this Unix socket (default: /tmp/blockcache-ID.sock)
  --listen HOST:PORT     also (or only) serve on TCP; HOST defaults to 127.0.0.1, PORT to 10809
  --export NAME          export name (default ''; the empty name is always accepted)
  --control PATH         control socket for status/flush/metrics (default: the NBD socket path + .control)
  --origin DEV           open the origin at DEV instead of the recorded one (relocation: its
                         size and content fingerprint must match)
  --force                serve dirty blocks even over an origin whose identity changed
  --ram-cache SIZE       RAM tier above the SSD tier (e.g. 256M; 0 = off; default 64M): hot
                         blocks are answered from memory; in writeback mode writes complete in
                         RAM and reach the SSD tier within 5 s or at the next FLUSH/FUA
  --set KEY=VALUE        apply a runtime setting at start (repeatable; see blockcache set --help)
  -h, --help             show this help`;

export const DEFAULT_NBD_PORT = 10809;

/** --ram-cache SIZE: 0 turns the RAM tier off. */
export function parseRamCache(text: string): number {
  const bytes = text.trim().toLowerCase() === 'off' ? 0 : parseSize(text, '--ram-cache');
  if (bytes > RAM_CACHE_BYTES_MAX) throw new UsageError(`--ram-cache: ${text} is larger than the limit (${formatBytes(RAM_CACHE_BYTES_MAX)})`);
  return bytes;
}

export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(value.trim());
  const host = match ? (match[1] ?? match[2]) : undefined;
  const port = match?.[3] !== undefined ? Number(match[3]) : DEFAULT_NBD_PORT;
  if (!match || port < 1 || port > 65535) throw new UsageError(`--listen must be HOST:PORT, HOST or :PORT, not '${value}'`);
  return { host: host === '' || host === undefined ? '127.0.0.1' : host, port };
}

export interface ServeOptions {
  readonly cache: string;
  readonly origin?: string;
  readonly socket?: string;
  readonly listen?: { host: string; port: number };
  readonly exportName?: string;
  readonly control?: string;
  readonly force?: boolean;
  /** RAM tier size in bytes (default RAM_CACHE_BYTES_DEFAULT; 0 = off). */
  readonly ramBytes?: number;
  /** Runtime settings applied before serving (KEY=VALUE). */
  readonly settings?: readonly string[];
  /** Called once the server is ready (after the 'ready' line). */
  readonly onReady?: (info: { uri: string; control: string; engine: CacheEngine }) => void;
}

function log(line: string): void {
  process.stderr.write(`blockcache: ${line}\n`);
}

async function openOrigin(spec: string, relocated: boolean): Promise<OpenedDevice> {
  try {
    return await openDevice(spec);
  } catch (error) {
    if (!relocated && error instanceof BlockcacheError) {
      throw new BlockcacheError(error.code, `${error.message} (the origin recorded in the cache; give --origin DEV if it moved)`);
    }
    throw error;
  }
}

/** Runs the server until SIGINT/SIGTERM; resolves with the exit code. */
export async function serve(options: ServeOptions): Promise<number> {
  // Cache writes land in the page cache, and hot reads come from it: small ones run inline while they stay fast.
  const cache = await openDevice(options.cache, { inlineIo: true });
  const closers: Array<() => Promise<void>> = [() => cache.device.close()];
  const closeAll = async () => { for (const close of closers.reverse()) await close().catch(() => {}); };
  try {
    const { superblock } = await readSuperblock(cache.device);
    const origin = await openOrigin(options.origin ?? superblock.origin.name, options.origin !== undefined);
    closers.push(() => origin.device.close());
    let lastProgress = 0;
    // Latency histograms: the cache device and the origin are timed below the engine, client requests above it.
    const metrics = new CacheMetrics();
    const { engine, report } = await openCache({
      cache: new TimedDevice(cache.device, metrics.observers.cacheDevice), origin: new TimedDevice(origin.device, metrics.observers.origin), originLocation: origin.location, relocated: options.origin !== undefined,
      force: options.force, log, ramBytes: options.ramBytes ?? RAM_CACHE_BYTES_DEFAULT,
      progress: (phase, done, total) => {
        if (Date.now() - lastProgress < 1000 || done === total) return;
        lastProgress = Date.now();
        log(`opening: ${phase} ${Math.floor((100 * done) / total)}%`);
      },
    });
    closers.push(() => engine.close());
    metrics.attach(engine);
    if (cache.device instanceof FileDevice) metrics.watchInlineIo(cache.device.inlineReads, cache.device.inlineWrites);
    if (options.settings && options.settings.length > 0) await applySettings(engine, parseAssignments(options.settings.join('\n')));
    log(`${report.cleanShutdown ? 'clean start' : 'recovered after a crash'}: ${report.keptDirty} dirty and ${report.keptClean} clean blocks kept`
      + (report.freed > 0 ? `, ${report.freed} dropped` : '') + (report.corruptRecords > 0 ? `, ${report.corruptRecords} corrupt records` : '')
      + (report.originChanged ? ' (origin changed while offline: clean copies dropped)' : ''));
    const id = superblock.uuid.toString('hex').slice(0, 8);
    const socket = options.socket ?? (options.listen ? undefined : `/tmp/blockcache-${id}.sock`);
    const server = await NbdServer.start({
      device: new TimedDevice(engine, metrics.observers.client), socketPath: socket, listen: options.listen, exportName: options.exportName ?? '',
      description: `blockcache ${superblock.mode} cache of ${superblock.origin.name}`, log,
    });
    closers.push(() => server.shutdown());
    const controlPath = options.control ?? `${socket ?? path.join('/tmp', `blockcache-${id}`)}.control`;
    const control = await ControlServer.start(controlPath, {
      'GET /status': async () => ({ body: JSON.stringify(engineStatus(engine)) }),
      'POST /flush': async (_request, _body, signal) => {
        await engine.writebackAll(undefined, signal);
        return { body: JSON.stringify(engineStatus(engine)) };
      },
      'GET /metrics': async () => ({ type: metrics.contentType, body: await metrics.metrics() }),
      'GET /settings': async () => ({ body: JSON.stringify(readSettings(engine)) }),
      'POST /settings': async (_request, body) => ({ body: JSON.stringify(await applySettings(engine, parseAssignments(body))) }),
    });
    closers.push(() => control.close());
    const uri = server.uris[0]!;
    process.stdout.write(`ready ${uri}\n`);
    log(`serving ${formatBytes(engine.sizeBytes)} (${superblock.mode}, ${superblock.cacheBlocks} cache blocks of ${formatBytes(superblock.blockBytes)}); control socket ${controlPath}`);
    options.onReady?.({ uri, control: controlPath, engine });
    await waitForSignal();
    log('stopping: finishing in-flight requests and committing metadata');
    await closeAll();
    log('stopped cleanly');
    return 0;
  } catch (error) {
    await closeAll();
    throw error;
  }
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.on('SIGINT', () => log('already stopping'));
      process.on('SIGTERM', () => log('already stopping'));
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'serve a cache over NBD',
  help: HELP,
  async run(argv) {
    const { values } = parseOptions(argv, {
      cache: { type: 'string' }, socket: { type: 'string' }, listen: { type: 'string' }, export: { type: 'string' },
      control: { type: 'string' }, origin: { type: 'string' }, force: { type: 'boolean' }, set: { type: 'string', multiple: true },
      'ram-cache': { type: 'string' },
    });
    return serve({
      cache: required<string>(values.cache, '--cache'), origin: values.origin, socket: values.socket,
      listen: values.listen !== undefined ? parseListen(values.listen) : undefined, exportName: values.export,
      control: values.control, force: values.force, settings: values.set,
      ramBytes: values['ram-cache'] !== undefined ? parseRamCache(values['ram-cache']) : undefined,
    });
  },
};
