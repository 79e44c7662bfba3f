// blockcache flush: write every dirty block of a running server back to the origin.
import { Command, parseOptions, required } from '../command.js';
import { controlRequest } from '../../control/control-server.js';
import { BlockcacheError } from '../../stdx/errors.js';
import { fetchStatus } from './status.js';
import { formatBytes } from '../human.js';

const HELP = `usage: blockcache flush --control PATH

Writes every dirty block of the server behind the control socket back to the
origin, showing progress on stderr; exits 0 when no dirty block is left.

  --control PATH   the server's control socket
  -h, --help       show this help`;

/** Progress is shown at most this often. */
const PROGRESS_INTERVAL_MS = 500;

export const flushCommand: Command = {
  name: 'flush',
  summary: 'write all dirty blocks back to the origin (running server)',
  help: HELP,
  async run(argv) {
    const { values } = parseOptions(argv, { control: { type: 'string' } });
    if (values.help) { process.stdout.write(`${HELP}\n`); return 0; }
    const control = required<string>(values.control, '--control');
    const before = await fetchStatus(control);
    let done = false;
    const progress = (async () => {
      while (!done) {
        await new Promise((resolve) => setTimeout(resolve, PROGRESS_INTERVAL_MS));
        if (done) break;
        const status = await fetchStatus(control).catch(() => undefined);
        if (status) process.stderr.write(`flushing: ${status.dirtyBlocks} dirty blocks (${formatBytes(status.dirtyBytes)}) left\n`);
      }
    })();
    try {
      const response = await controlRequest(control, 'POST', '/flush');
      if (response.status !== 200) throw new BlockcacheError('EIO', `flush failed: ${response.body}`);
    } finally {
      done = true;
      await progress;
    }
    const after = await fetchStatus(control);
    process.stdout.write(`flushed: ${before.dirtyBlocks} dirty blocks (${formatBytes(before.dirtyBytes)}) written back; ${after.dirtyBlocks} dirty now\n`);
    return 0;
  },
};
