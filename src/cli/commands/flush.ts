// blockcache flush: write every dirty block of a running server back to the
// origin, with a progress bar (bytes left, rate, ETA) on a terminal and plain
// periodic lines otherwise. Ctrl-C is safe: the server stops after the current
// writeback round (each block is either written back and clean, or still dirty).
import cliProgress from 'cli-progress';
import { Command, parseOptions, required } from '../command.js';
import { controlRequest } from '../../control/control-server.js';
import { CacheStatus } from '../../control/status.js';
import { BlockcacheError } from '../../stdx/errors.js';
import { fetchStatus } from './status.js';
import { formatBytes, formatDuration } from '../human.js';

const HELP = `usage: blockcache flush --control PATH

Writes every dirty block of the server behind the control socket back to the
origin; exits 0 when no dirty block is left. On a terminal it shows a progress
bar with the bytes left, the writeback rate and an ETA; otherwise one line every
few seconds on stderr. Interrupting it (Ctrl-C) is safe: the server stops after
the current round; what was written back is clean, the rest stays dirty.

  --control PATH   the server's control socket
  -h, --help       show this help`;

/** Progress refresh on a terminal, and between plain lines otherwise. */
const BAR_INTERVAL_MS = 250;
const LINE_INTERVAL_MS = 2000;
const EXIT_INTERRUPTED = 130;

function eta(status: CacheStatus): string {
  return status.cleanEtaSeconds === null || status.cleanEtaSeconds === undefined ? 'unknown' : formatDuration(status.cleanEtaSeconds);
}

function rate(status: CacheStatus): string {
  return `${formatBytes(status.writebackRateBytesPerSecond ?? 0)}/s`;
}

/** Shows progress until `stop()`; the total grows if clients dirty more blocks meanwhile. */
function startProgress(control: string, before: CacheStatus): { stop(): Promise<CacheStatus | undefined> } {
  const terminal = process.stderr.isTTY === true;
  let total = Math.max(1, before.dirtyBytes);
  let last: CacheStatus | undefined;
  const bar = terminal
    ? new cliProgress.SingleBar({
      format: 'flushing [{bar}] {percentage}% | {left} left | {rate} | ETA {etaText}',
      stream: process.stderr, hideCursor: true, clearOnComplete: false, barsize: 30, fps: 10,
    }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(total, 0, { left: formatBytes(before.dirtyBytes), rate: '-', etaText: eta(before) });
  let stopped = false;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (!stopped) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, terminal ? BAR_INTERVAL_MS : LINE_INTERVAL_MS).unref();
      });
      const status = await fetchStatus(control).catch(() => undefined);
      if (!status) continue;
      last = status;
      if (status.dirtyBytes > total) total = status.dirtyBytes;
      if (bar) {
        bar.setTotal(total);
        bar.update(total - status.dirtyBytes, { left: formatBytes(status.dirtyBytes), rate: rate(status), etaText: eta(status) });
      } else if (!stopped) {
        process.stderr.write(`flushing: ${formatBytes(status.dirtyBytes)} left (${status.dirtyBlocks} blocks), ${rate(status)}, ETA ${eta(status)}\n`);
      }
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake?.();
      await loop;
      bar?.stop();
      return last;
    },
  };
}

export const flushCommand: Command = {
  name: 'flush',
  summary: 'write all dirty blocks back to the origin (running server)',
  help: HELP,
  async run(argv) {
    const { values } = parseOptions(argv, { control: { type: 'string' } });
    const control = required<string>(values.control, '--control');
    const before = await fetchStatus(control);
    const started = performance.now();
    const progress = startProgress(control, before);
    const interrupt = () => {
      void progress.stop().then((last) => {
        const left = last ? `${formatBytes(last.dirtyBytes)} still dirty` : 'some blocks still dirty';
        process.stderr.write(`flush interrupted: ${left}; they stay safely in the cache (run flush again to finish)\n`);
        // Exiting closes the request: the server stops writing back after its current round.
        process.exit(EXIT_INTERRUPTED);
      });
    };
    process.once('SIGINT', interrupt);
    process.once('SIGTERM', interrupt);
    try {
      const response = await controlRequest(control, 'POST', '/flush');
      if (response.status !== 200) throw new BlockcacheError('EIO', `flush failed: ${response.body}`);
    } finally {
      await progress.stop();
      process.off('SIGINT', interrupt);
      process.off('SIGTERM', interrupt);
    }
    const after = await fetchStatus(control);
    const seconds = (performance.now() - started) / 1000;
    const written = (after.writebackBytes as number ?? 0) - (before.writebackBytes as number ?? 0);
    process.stdout.write(`flushed: ${formatBytes(written)} written back in ${seconds.toFixed(1)}s`
      + ` (${formatBytes(seconds > 0 ? written / seconds : 0)}/s); ${after.dirtyBlocks} dirty blocks now\n`);
    return 0;
  },
};
