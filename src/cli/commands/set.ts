// blockcache set: change a running server's settings, or list them.
import { Command, parseOptions, required, UsageError } from '../command.js';
import { controlRequest } from '../../control/control-server.js';
import { settingsHelp } from '../../control/settings.js';
import { BlockcacheError } from '../../stdx/errors.js';

const HELP = `usage: blockcache set --control PATH [KEY=VALUE...] [--json]

Changes settings of the running server behind the control socket; with no
KEY=VALUE, lists the current values (as KEY=VALUE lines). Every value is checked
before any is applied. Sizes take K, M, G (powers of 1024, optional iB).
'mode' away from writeback writes every dirty block back first and returns when
that is done; 'policy' and 'mode' are persisted in the superblock, the others
last until the server stops (give them to 'serve --set' to apply at start).

settings:
${settingsHelp()}

examples:
  blockcache set --control /tmp/c.control dirty-threshold=10 writeback-rate=20MiB/s
  blockcache set --control /tmp/c.control writeback-rate=20M,iops=500 dirty-max-age=5m
  blockcache set --control /tmp/c.control sequential-cutoff=4M policy=lru

  --control PATH   the server's control socket
  --json           print the settings as one JSON object
  -h, --help       show this help`;

/** Long enough for a mode switch that writes back a large cache. */
const SET_TIMEOUT_MS = 0;

function print(settings: Record<string, string>, json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify(settings)}\n`);
  else process.stdout.write(`${Object.entries(settings).map(([key, value]) => `${key}=${value}`).join('\n')}\n`);
}

export const setCommand: Command = {
  name: 'set',
  summary: 'change or list a running server\'s settings',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parseOptions(argv, { control: { type: 'string' }, json: { type: 'boolean' } }, true);
    const control = required<string>(values.control, '--control');
    for (const item of positionals) {
      if (!/^[a-z-]+=./.test(item)) throw new UsageError(`'${item}' is not KEY=VALUE`);
    }
    const response = positionals.length === 0
      ? await controlRequest(control, 'GET', '/settings', undefined, 10_000)
      : await controlRequest(control, 'POST', '/settings', positionals.join('\n'), SET_TIMEOUT_MS);
    if (response.status !== 200) {
      let message = response.body;
      try { message = (JSON.parse(response.body) as { error: string }).error; } catch { /* not JSON */ }
      throw new BlockcacheError(response.status === 400 ? 'BAD_ARGUMENT' : 'EIO', message);
    }
    print(JSON.parse(response.body) as Record<string, string>, values.json === true);
    return 0;
  },
};
