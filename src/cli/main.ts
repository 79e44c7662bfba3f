// The blockcache command line: dispatches to a command and turns every failure
// into one line on stderr with a non-zero exit (2: usage, 1: operation failed,
// 70: internal error). Set BLOCKCACHE_DEBUG=1 to see stack traces.
import { Command, UsageError } from './command.js';
import { createCommand } from './commands/create.js';
import { serveCommand } from './commands/serve.js';
import { statusCommand } from './commands/status.js';
import { flushCommand } from './commands/flush.js';
import { setCommand } from './commands/set.js';
import { detachCommand } from './commands/detach.js';
import { checkCommand } from './commands/check.js';
import { simCommand } from './commands/sim.js';
import { startDefaultCommand } from './commands/start-default.js';
import { BlockcacheError } from '../stdx/errors.js';

const COMMANDS: readonly Command[] = [
  createCommand, serveCommand, statusCommand, flushCommand, setCommand, detachCommand, checkCommand, simCommand, startDefaultCommand,
];

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_INTERNAL = 70;

function usage(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  return [
    'usage: blockcache COMMAND [options]   (blockcache COMMAND --help for a command\'s options)',
    '',
    'A user-space SSD cache for slow block storage, served over NBD.',
    '',
    ...COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
  ].join('\n');
}

function fail(message: string, code: number, error?: unknown): number {
  process.stderr.write(`blockcache: ${message}\n`);
  if (error instanceof Error && process.env.BLOCKCACHE_DEBUG) process.stderr.write(`${error.stack}\n`);
  return code;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? EXIT_USAGE : 0;
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (!command) return fail(`unknown command '${name}' (commands: ${COMMANDS.map((c) => c.name).join(', ')})`, EXIT_USAGE);
  // Every command's --help, in one place: it wins over any other argument.
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.help}\n`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) return fail(`${name}: ${error.message} (see blockcache ${name} --help)`, EXIT_USAGE, error);
    if (error instanceof BlockcacheError) return fail(`${name}: ${error.message}`, EXIT_FAILED, error);
    return fail(`${name}: internal error: ${(error as Error)?.message ?? String(error)}`, EXIT_INTERNAL, error);
  }
}

process.on('uncaughtException', (error) => {
  process.exitCode = fail(`internal error: ${error.message}`, EXIT_INTERNAL, error);
  process.exit();
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // Servers close their handles; anything left (e.g. a stuck client socket) must not keep us alive.
  setTimeout(() => process.exit(), 2000).unref();
});
