// File I/O paths micro-benchmark (issue 7, "try io_uring where Node offers it"):
// the three ways Node can read and write a file in the page cache, on the
// patterns the cache device sees. Async `fs.read`/`fs.write` go through libuv,
// which uses io_uring for them only when UV_USE_IO_URING=1 (off by default in
// this Node), else its thread pool; `fs.readSync`/`fs.writeSync` run on the
// calling thread (blockcache's inline cache-device I/O). Each case runs in a
// child process of its own (the variable is read when libuv starts) for a few
// seconds and reports operations per second and the process's CPU (user +
// system, share of one core; io_uring's kernel submission thread counts too).
// The file is written first with 64 KiB pieces, as blockcache writes its files
// (FILE_WRITE_PIECE_BYTES), so it sits in the page cache in the same folios.
// Run: npx tsc -p . && node dist/bench/io-paths.js [SECONDS] [DIRECTORY]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FILE_WRITE_PIECE_BYTES, KiB, MiB } from '../src/constants.js';

const FILE_BYTES = 256 * MiB;

interface Case {
  readonly label: string;
  readonly op: 'read' | 'write';
  readonly blockBytes: number;
  readonly depth: number;
  readonly random: boolean;
}

const CASES: readonly Case[] = [
  { label: '4K random read, depth 32', op: 'read', blockBytes: 4 * KiB, depth: 32, random: true },
  { label: '4K random write, depth 32', op: 'write', blockBytes: 4 * KiB, depth: 32, random: true },
  { label: '1M sequential read, depth 8', op: 'read', blockBytes: 1 * MiB, depth: 8, random: false },
];

/** How a case's I/O is issued: libuv's thread pool, libuv's io_uring, or synchronously on the caller's thread. */
const PATHS = [
  { label: 'thread pool (fs.read/fs.write)', mode: 'async', uring: '0' },
  { label: 'io_uring (same calls, UV_USE_IO_URING=1)', mode: 'async', uring: '1' },
  { label: 'synchronous (fs.readSync/fs.writeSync)', mode: 'sync', uring: '0' },
] as const;

interface ChildResult {
  readonly opsPerSecond: number;
  readonly cpuPercent: number;
}

/** Runs one case and prints its ChildResult as a JSON line when done. */
function runChild(file: string, seconds: number, which: Case, mode: 'async' | 'sync'): void {
  const fd = fs.openSync(file, 'r+');
  const blocks = FILE_BYTES / which.blockBytes;
  let sequential = 0;
  const nextOffset = () => (which.random ? Math.floor(Math.random() * blocks) : sequential++ % blocks) * which.blockBytes;
  const buffers = Array.from({ length: which.depth }, () => Buffer.alloc(which.blockBytes, 7));
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let done = 0;
  const finish = (): void => {
    const elapsedSeconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    fs.closeSync(fd);
    const result: ChildResult = { opsPerSecond: done / elapsedSeconds, cpuPercent: ((cpu.user + cpu.system) / 1e6 / elapsedSeconds) * 100 };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  };
  if (mode === 'sync') {
    const buffer = buffers[0]!;
    while (performance.now() < deadline) {
      for (let i = 0; i < 64; i++) {
        if (which.op === 'read') fs.readSync(fd, buffer, 0, which.blockBytes, nextOffset());
        else fs.writeSync(fd, buffer, 0, which.blockBytes, nextOffset());
        done++;
      }
    }
    finish();
    return;
  }
  // Async: `depth` operations in flight, each reissued as it completes.
  let stopped = false;
  const issue = (buffer: Buffer): void => {
    if (stopped) return;
    const completed = (error: NodeJS.ErrnoException | null) => {
      if (error) throw error;
      done++;
      issue(buffer);
    };
    if (which.op === 'read') fs.read(fd, buffer, 0, which.blockBytes, nextOffset(), completed);
    else fs.write(fd, buffer, 0, which.blockBytes, nextOffset(), completed);
  };
  for (const buffer of buffers) issue(buffer);
  setTimeout(() => {
    stopped = true;
    finish();
  }, seconds * 1000);
}

function writeFile(file: string): void {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(MiB, 3);
  for (let at = 0; at < FILE_BYTES; at += MiB) {
    for (let piece = 0; piece < MiB; piece += FILE_WRITE_PIECE_BYTES) fs.writeSync(fd, chunk, piece, FILE_WRITE_PIECE_BYTES, at + piece);
  }
  fs.closeSync(fd);
}

function formatRate(which: Case, result: ChildResult): string {
  const ops = Math.round(result.opsPerSecond).toLocaleString('en-US');
  return which.blockBytes >= MiB ? `${ops} (${((result.opsPerSecond * which.blockBytes) / 1e9).toFixed(1)} GB/s)` : ops;
}

function main(): void {
  if (process.argv[2] === '--child') {
    const [file, seconds, index, mode] = process.argv.slice(3);
    runChild(file!, Number(seconds), CASES[Number(index)]!, mode as 'async' | 'sync');
    return;
  }
  const seconds = Number(process.argv[2] ?? 3);
  const directory = fs.mkdtempSync(path.join(process.argv[3] ?? os.tmpdir(), 'blockcache-io-paths-'));
  const file = path.join(directory, 'data.img');
  try {
    writeFile(file);
    const self = fileURLToPath(import.meta.url);
    process.stdout.write(`${os.cpus().length} cores, node ${process.version}, libuv ${process.versions.uv}, kernel ${os.release()}; ${seconds} s per case\n\n`);
    process.stdout.write(`| pattern | ${PATHS.map((p) => `${p.label}: ops/s · CPU`).join(' | ')} |\n|---|${PATHS.map(() => '---').join('|')}|\n`);
    CASES.forEach((which, index) => {
      const cells = PATHS.map((p) => {
        const child = spawnSync(process.execPath, [self, '--child', file, String(seconds), String(index), p.mode], {
          env: { ...process.env, UV_USE_IO_URING: p.uring }, encoding: 'utf8', timeout: (seconds + 30) * 1000,
        });
        if (child.status !== 0) return `failed: ${(child.stderr || child.error?.message || '').trim().split('\n')[0]}`;
        const result = JSON.parse(child.stdout.trim()) as ChildResult;
        return `${formatRate(which, result)} · ${Math.round(result.cpuPercent)}%`;
      });
      process.stdout.write(`| ${which.label} | ${cells.join(' | ')} |\n`);
    });
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

main();
