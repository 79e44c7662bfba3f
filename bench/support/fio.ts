// Running one fio pattern against an NBD URI and reading its JSON output.
//
// Every pattern runs one job over one NBD connection (fio's nbd engine), time
// based with a ramp, with reads and writes reported together
// (unified_rw_reporting=mixed) so a 70/30 mix has one IOPS figure and one
// latency distribution. Latency is fio's total latency (submission to
// completion), from lat_percentiles.
import { spawn } from 'node:child_process';
import { TOOL_ENV } from './servers.js';

export interface FioPattern {
  /** Short label used in tables, e.g. '4K randread QD32'. */
  readonly label: string;
  readonly rw: 'read' | 'write' | 'randread' | 'randwrite' | 'randrw';
  readonly blockBytes: number;
  readonly depth: number;
  /** Bytes of the device the pattern touches (from offsetBytes). */
  readonly sizeBytes: number;
  /** Where the touched range starts (default 0). */
  readonly offsetBytes?: number;
  readonly readPercent?: number;
  /** e.g. 'zipf:1.2'. */
  readonly distribution?: string;
  readonly rampSeconds: number;
  readonly runtimeSeconds: number;
  /** Run until sizeBytes is covered once instead of for runtimeSeconds (warm-up). */
  readonly once?: boolean;
}

export interface FioResult {
  readonly iops: number;
  readonly mibPerSecond: number;
  readonly p50Us: number;
  readonly p99Us: number;
  /**
   * fio's own CPU use (user + system) as a share of one core over the job's
   * runtime. Near 100% the client, not the server, bounds the IOPS: fio's nbd
   * engine makes a fixed number of system calls per I/O whichever server answers.
   */
  readonly clientCpuPercent: number;
  /** fio's context switches per I/O: how often the client slept waiting for the server. */
  readonly clientSwitchesPerIo: number;
}

export function fioArgs(uri: string, pattern: FioPattern): string[] {
  const args = [
    `--name=${pattern.label.replace(/\W+/g, '-')}`, '--ioengine=nbd', `--uri=${uri}`,
    `--rw=${pattern.rw}`, `--bs=${pattern.blockBytes}`, `--iodepth=${pattern.depth}`, `--size=${pattern.sizeBytes}`,
    '--unified_rw_reporting=mixed', '--lat_percentiles=1', '--percentile_list=50:99', '--output-format=json',
    // Same offsets for blockcache and its peer; never verify (that is the tests' job).
    '--randrepeat=1', '--norandommap',
  ];
  if (pattern.offsetBytes !== undefined) args.push(`--offset=${pattern.offsetBytes}`);
  if (pattern.readPercent !== undefined) args.push(`--rwmixread=${pattern.readPercent}`);
  if (pattern.distribution !== undefined) args.push(`--random_distribution=${pattern.distribution}`);
  if (!pattern.once) args.push('--time_based', `--runtime=${pattern.runtimeSeconds}`, `--ramp_time=${pattern.rampSeconds}`);
  return args;
}

export function runFio(uri: string, pattern: FioPattern): Promise<FioResult> {
  const args = fioArgs(uri, pattern);
  return new Promise((resolve, reject) => {
    const child = spawn('fio', args, { env: TOOL_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const text = Buffer.concat(stdout).toString('utf8');
      if (code !== 0) {
        reject(new Error(`fio ${args.join(' ')}: exit ${code}\n${Buffer.concat(stderr).toString('utf8')}${text}`));
        return;
      }
      try {
        resolve(parseFio(text));
      } catch (error) {
        reject(new Error(`fio output: ${(error as Error).message}\n${text.slice(0, 2000)}`));
      }
    });
  });
}

interface FioJsonSide {
  iops: number;
  bw: number; // KiB/s
  total_ios?: number;
  lat_ns: { percentile?: Record<string, number> };
  clat_ns?: { percentile?: Record<string, number> };
}

/** fio may print notices ('fio: connected to NBD server') before the JSON. */
export function parseFio(text: string): FioResult {
  const json = JSON.parse(text.slice(text.indexOf('{'))) as {
    jobs: Array<{ error: number; mixed?: FioJsonSide; usr_cpu?: number; sys_cpu?: number; ctx?: number }>;
  };
  const job = json.jobs[0];
  if (job === undefined || job.error !== 0) throw new Error(`fio job failed (error ${job?.error})`);
  const side = job.mixed;
  if (side === undefined) throw new Error('no "mixed" section (needs unified_rw_reporting=mixed)');
  const percentiles = side.lat_ns.percentile ?? side.clat_ns?.percentile ?? {};
  return {
    iops: side.iops,
    mibPerSecond: side.bw / 1024,
    p50Us: (percentiles['50.000000'] ?? Number.NaN) / 1000,
    p99Us: (percentiles['99.000000'] ?? Number.NaN) / 1000,
    clientCpuPercent: (job.usr_cpu ?? Number.NaN) + (job.sys_cpu ?? Number.NaN),
    clientSwitchesPerIo: (job.ctx ?? Number.NaN) / (side.total_ios ?? Number.NaN),
  };
}
