// Running external programs from tests, always asynchronously: the server under
// test usually runs in the test process, so a synchronous child would deadlock it.
//
// Every command has a timeout (the child is killed when it expires); background
// processes are tracked and `stop()` kills them by their own pid, never by name.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';

/** Debian's tools first: a pyenv python3 earlier in PATH breaks nbdsh. */
export const TOOL_ENV: NodeJS.ProcessEnv = { ...process.env, PATH: `/usr/bin:/usr/sbin:/bin:/sbin:${process.env.PATH ?? ''}` };

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const KILL_GRACE_MS = 2_000;

/** Runs a command to completion and captures its output (never throws for a non-zero exit). */
export function runCommand(command: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? TOOL_ENV, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS).unref();
    }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code, signal, timedOut,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
    child.stdin.on('error', () => { /* the child may exit before reading its input */ });
    child.stdin.end(options.input ?? '');
  });
}

/** Runs a shell command line with bash (for pipes); same semantics as runCommand. */
export function runShell(script: string, options: RunOptions = {}): Promise<CommandResult> {
  return runCommand('bash', ['-o', 'pipefail', '-c', script], options);
}

/** A one-line description of a result, for assertion messages. */
export function describeResult(what: string, result: CommandResult): string {
  const tail = (text: string): string => text.length > 4000 ? `…${text.slice(-4000)}` : text;
  return `${what}: exit ${result.code}${result.signal ? ` signal ${result.signal}` : ''}${result.timedOut ? ' (TIMED OUT)' : ''}\n` +
    `--- stdout\n${tail(result.stdout)}\n--- stderr\n${tail(result.stderr)}`;
}

/** Throws unless the command exited 0; returns the result. */
export async function runChecked(command: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const result = await runCommand(command, args, options);
  if (result.code !== 0) throw new Error(describeResult(`${command} ${args.join(' ')}`, result));
  return result;
}

export interface BackgroundProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  /** Resolves with the exit code when the process exits. */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after a grace period; resolves when it is gone. */
  stop(): Promise<void>;
  /** Sends `signal` and resolves when the process has exited. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** Starts a long-running process; output goes to memory (and to `logPath` if given). */
export function spawnBackground(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; logPath?: string } = {}): BackgroundProcess {
  const child = spawn(command, args, { env: options.env ?? TOOL_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: Buffer[] = [];
  const log = options.logPath !== undefined ? fs.createWriteStream(options.logPath) : null;
  const collect = (chunk: Buffer): void => {
    output.push(chunk);
    log?.write(chunk);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (error) => {
      output.push(Buffer.from(`spawn error: ${error.message}\n`));
      exitCode = null;
      resolve(null);
    });
    child.on('exit', (code) => {
      exitCode = code;
      log?.end();
      resolve(code);
    });
  });
  return {
    pid: child.pid ?? -1,
    child,
    output: () => Buffer.concat(output).toString('utf8'),
    exited,
    async kill(signal: NodeJS.Signals): Promise<void> {
      if (exitCode !== undefined) return;
      child.kill(signal);
      await exited;
    },
    async stop(): Promise<void> {
      if (exitCode !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Fails (never skips) when a tool is missing, telling how to install it. */
export async function requireTools(tools: readonly string[]): Promise<void> {
  const missing: string[] = [];
  for (const tool of tools) {
    const result = await runCommand('bash', ['-c', `command -v ${tool}`], { timeoutMs: 10_000 });
    if (result.code !== 0) missing.push(tool);
  }
  if (missing.length > 0) {
    throw new Error(`missing test tools: ${missing.join(', ')}; run \`bash scripts/setup.sh test\` first`);
  }
}
