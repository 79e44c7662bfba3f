// The NBD conformance suite of nbd-conformance.md sections A–G, reusable against
// any writable export of at least 256 MiB given only its URI.
//
//   defineConformanceSuite('memory', async () => ({ uri, stop }))
//
// Registers one describe() per section. Tests run in order and share state:
// section B uploads src.img, which C and G compare against. Every external tool
// runs asynchronously with a timeout; the target and all temp files are cleaned
// up in after(), the FUSE/loop/mount stack in a finally.
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { CommandResult, describeResult, requireTools, runCommand, runShell } from './process.js';
import { TempDir, makeTempDir } from './temp-dir.js';
import { LIBNBD_BATTERY_PY } from './libnbd-battery.js';
import { defineRawWireChecks } from './conformance-raw.js';
import { defineFilesystemChecks } from './conformance-fuse.js';

export interface ConformanceTarget {
  readonly uri: string;
  stop(): Promise<void>;
}

export interface ConformanceOptions {
  /** Skips section G (needs root, /dev/fuse and loop devices); reported as skipped, never silent. */
  skipFuse?: boolean;
}

/** Shared state of one suite run. */
export interface SuiteContext {
  uri: string;
  dir: TempDir;
  sizeBytes: number;
  sourceImage: string;
}

const MiB = 1024 * 1024;
const TOOLS = ['nbdinfo', 'nbdcopy', 'nbdsh', 'qemu-img', 'qemu-io', 'fio', 'jq', 'cmp'];

export async function expectSuccess(what: string, result: Promise<CommandResult>): Promise<CommandResult> {
  const done = await result;
  assert.equal(done.code, 0, describeResult(what, done));
  return done;
}

export function defineConformanceSuite(
  label: string, startTarget: () => Promise<ConformanceTarget>, options: ConformanceOptions = {},
): void {
  describe(`NBD conformance: ${label}`, () => {
    let target: ConformanceTarget | null = null;
    const context = {} as SuiteContext;

    before(async () => {
      await requireTools(TOOLS);
      context.dir = await makeTempDir('blockcache-conformance-');
      target = await startTarget();
      context.uri = target.uri;
      const size = await expectSuccess('nbdinfo --size', runCommand('nbdinfo', ['--size', context.uri]));
      context.sizeBytes = Number(size.stdout.trim());
      assert.ok(context.sizeBytes >= 256 * MiB, `the export must be at least 256 MiB, it is ${context.sizeBytes}`);
      context.sourceImage = context.dir.file('src.img');
      await makeSourceImage(context.sourceImage, context.sizeBytes);
    });

    after(async () => {
      await target?.stop();
      await context.dir?.remove();
    });

    defineNbdinfoChecks(context);
    defineNbdcopyChecks(context);
    defineQemuChecks(context);
    defineFioChecks(context);
    defineLibnbdChecks(context);
    defineRawWireChecks(context);
    defineFilesystemChecks(context, options.skipFuse === true);
  });
}

/** Sparse image the size of the export with data at aligned, odd and last-MiB positions (§B). */
async function makeSourceImage(path: string, sizeBytes: number): Promise<void> {
  const file = await fs.promises.open(path, 'w');
  try {
    await file.truncate(sizeBytes);
    await file.write(randomBytes(8 * MiB), 0, 8 * MiB, 0);
    await file.write(randomBytes(3 * 4096), 0, 3 * 4096, 20000 * 4096);
    await file.write(randomBytes(777), 0, 777, 100 * MiB + 123);
    await file.write(randomBytes(MiB), 0, MiB, sizeBytes - MiB);
  } finally {
    await file.close();
  }
}

function defineNbdinfoChecks(c: SuiteContext): void {
  describe('A. nbdinfo', () => {
    let info: { protocol: string; structured: boolean; exports: Array<Record<string, unknown>> };
    test('A1-A6 nbdinfo --json: fixed newstyle, SR, writable, flags, base:allocation, sane block sizes', async () => {
      const result = await expectSuccess('nbdinfo --json', runCommand('nbdinfo', ['--json', c.uri]));
      info = JSON.parse(result.stdout);
      const e = info.exports[0]!;
      assert.equal(info.protocol, 'newstyle-fixed');
      assert.equal(info.structured, true);
      assert.equal(e.is_read_only, false);
      assert.ok((e['export-size'] as number) >= 256 * MiB);
      for (const flag of ['can_flush', 'can_fua', 'can_trim', 'can_zero', 'can_multi_conn', 'can_cache', 'can_df', 'can_fast_zero']) {
        assert.equal(e[flag], true, `${flag} in ${result.stdout}`);
      }
      assert.ok((e.contexts as string[]).includes('base:allocation'));
      if (e.block_size_minimum !== undefined) {
        const [min, pref, max] = [e.block_size_minimum, e.block_size_preferred, e.block_size_maximum] as number[];
        const pow2 = (v: number): boolean => v > 0 && (v & (v - 1)) === 0;
        assert.ok(pow2(min!) && min! <= 65536 && pow2(pref!) && pref! >= Math.max(min!, 512) && max! >= pref!, `block sizes ${min}/${pref}/${max}`);
        assert.ok(max! >= 256 * 1024, 'a maximum below 256 KiB breaks nbdcopy');
      }
    });
    test('A7 nbdinfo --list', async () => {
      const result = await expectSuccess('nbdinfo --list', runCommand('nbdinfo', ['--list', '--json', c.uri]));
      assert.ok(JSON.parse(result.stdout).exports.length >= 1);
    });
    test('A8 INFO (nbdinfo --json) and GO (nbdinfo --size) report the same size', async () => {
      const result = await expectSuccess('nbdinfo --json', runCommand('nbdinfo', ['--json', c.uri]));
      assert.equal(JSON.parse(result.stdout).exports[0]['export-size'], c.sizeBytes);
    });
    test('A9 nbdinfo --can connect/read/write/flush/fua/trim/zero', async () => {
      for (const can of ['connect', 'read', 'write', 'flush', 'fua', 'trim', 'zero']) {
        const result = await runCommand('nbdinfo', ['--can', can, c.uri]);
        assert.equal(result.code, 0, describeResult(`nbdinfo --can ${can}`, result));
      }
    });
    test('A10 nbdinfo --map totals equal the export size', async () => {
      const result = await expectSuccess('nbdinfo --map', runShell(`nbdinfo --map --totals --json '${c.uri}' | jq '[.[].size]|add'`));
      assert.equal(Number(result.stdout.trim()), c.sizeBytes);
    });
  });
}

function defineNbdcopyChecks(c: SuiteContext): void {
  describe('B. nbdcopy', () => {
    test('B1 upload with --flush, B2 download identical', async () => {
      await expectSuccess('nbdcopy --flush up', runCommand('nbdcopy', ['--flush', c.sourceImage, c.uri], { timeoutMs: 120_000 }));
      const dl = c.dir.file('dl.img');
      await expectSuccess('nbdcopy down', runCommand('nbdcopy', [c.uri, dl], { timeoutMs: 120_000 }));
      await expectSuccess('cmp', runCommand('cmp', [c.sourceImage, dl]));
      await fs.promises.rm(dl);
    });
    test('B3 single connection, 64 KiB requests, synchronous', async () => {
      const dl = c.dir.file('dl2.img');
      await expectSuccess('nbdcopy -C 1', runCommand('nbdcopy', ['-C', '1', '--request-size=65536', '--synchronous', c.uri, dl], { timeoutMs: 120_000 }));
      await expectSuccess('cmp', runCommand('cmp', [c.sourceImage, dl]));
      await fs.promises.rm(dl);
    });
    test('B4 multi-conn download (-C 4 -T 4)', async () => {
      const dl = c.dir.file('dl3.img');
      await expectSuccess('nbdcopy -C 4', runCommand('nbdcopy', ['-C', '4', '-T', '4', c.uri, dl], { timeoutMs: 120_000 }));
      await expectSuccess('cmp', runCommand('cmp', [c.sourceImage, dl]));
      await fs.promises.rm(dl);
    });
    test('B5 --allocated upload (zeroes as WRITE data)', async () => {
      await expectSuccess('nbdcopy --allocated', runCommand('nbdcopy', ['--allocated', c.sourceImage, c.uri], { timeoutMs: 180_000 }));
    });
  });
}

function defineQemuChecks(c: SuiteContext): void {
  describe('C. qemu-img / qemu-io', () => {
    test('C1 qemu-img compare: identical', async () => {
      const result = await expectSuccess('qemu-img compare', runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', c.sourceImage, c.uri], { timeoutMs: 120_000 }));
      assert.match(result.stdout, /Images are identical/);
    });
    test('C2 qemu-img map lengths add up to the export size', async () => {
      const result = await expectSuccess('qemu-img map', runShell(`qemu-img map --output=json -f raw '${c.uri}' | jq '[.[].length]|add'`, { timeoutMs: 120_000 }));
      assert.equal(Number(result.stdout.trim()), c.sizeBytes);
    });
    test('C3 qemu-img convert from the export', async () => {
      const out = c.dir.file('q.img');
      await expectSuccess('qemu-img convert', runCommand('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', c.uri, out], { timeoutMs: 120_000 }));
      await expectSuccess('cmp', runCommand('cmp', [c.sourceImage, out]));
      await fs.promises.rm(out);
    });
    test('C4 qemu-img convert -n onto the export, then compare', async () => {
      const src2 = c.dir.file('src2.img');
      const file = await fs.promises.open(src2, 'w');
      await file.truncate(c.sizeBytes);
      await file.write(randomBytes(3 * MiB + 5), 0, 3 * MiB + 5, 17 * MiB + 1);
      await file.write(randomBytes(MiB), 0, MiB, 200 * MiB);
      await file.close();
      await expectSuccess('qemu-img convert -n', runCommand('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src2, c.uri], { timeoutMs: 120_000 }));
      const result = await expectSuccess('qemu-img compare', runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src2, c.uri], { timeoutMs: 120_000 }));
      assert.match(result.stdout, /Images are identical/);
      await fs.promises.rm(src2);
    });
    test('C5 qemu-io battery (FUA writes, unaligned, zeroes, discard, 40 MiB split, aio)', async () => {
      const commands = [
        'write -P 0xa5 0 1M', 'read -P 0xa5 0 1M',
        'write -P 0x11 1000 513', 'read -P 0x11 1000 513', 'read -P 0xa5 0 1000',
        'write -z 1M 1M', 'read -P 0 1M 1M',
        'write -z -u 2M 1M', 'read -P 0 2M 1M',
        'discard 3M 1M',
        'write -f -P 0x22 4M 64k', 'read -P 0x22 4M 64k', 'flush',
        'write -P 0x33 8M 40M', 'read -P 0x33 8M 40M',
        'aio_write -P 0x44 50M 64k', 'aio_write -P 0x55 51M 64k', 'aio_flush',
        'read -P 0x44 50M 64k', 'read -P 0x55 51M 64k',
      ];
      const result = await expectSuccess('qemu-io battery', runCommand('qemu-io', ['-f', 'raw', ...commands.flatMap((cmd) => ['-c', cmd]), c.uri], { timeoutMs: 120_000 }));
      assert.doesNotMatch(result.stdout + result.stderr, /Pattern verification failed|error/i);
      assert.equal((result.stdout.match(/^(wrote|read) \d+\/\d+ bytes at offset/gm) ?? []).length, 17);
    });
    test('C6 writeback: write, flush, read', async () => {
      await expectSuccess('qemu-io -t writeback', runCommand('qemu-io', ['-f', 'raw', '-t', 'writeback', '-c', 'write -P 0x66 60M 1M', '-c', 'flush', '-c', 'read -P 0x66 60M 1M', c.uri]));
    });
    test('C7 data persists across connections', async () => {
      const result = await expectSuccess('qemu-io read', runCommand('qemu-io', ['-f', 'raw', '-c', 'read -P 0x66 60M 1M', c.uri]));
      assert.doesNotMatch(result.stdout, /Pattern verification failed/);
    });
  });
}

function fioArgs(c: SuiteContext, name: string, extra: string[]): string[] {
  return [`--name=${name}`, '--ioengine=nbd', `--uri=${c.uri}`, `--directory=${c.dir.path}`, ...extra];
}

function defineFioChecks(c: SuiteContext): void {
  describe('D. fio', () => {
    const d1 = ['--rw=randwrite', '--bs=4k', '--iodepth=32', '--size=64M', '--verify=crc32c', '--verify_fatal=1', '--output-format=terse'];
    test('D1 4k random writes at depth 32, verified', async () => {
      const result = await expectSuccess('fio D1', runCommand('fio', fioArgs(c, 'v1', [...d1, '--do_verify=1']), { timeoutMs: 120_000, cwd: c.dir.path }));
      const fields = result.stdout.trim().split('\n').pop()!.split(';');
      assert.equal(fields[4], '0', 'fio error field');
      assert.equal(fields[5], '65536', 'KiB read back by verify');
    });
    test('D2 mixed sizes 512..1M, verified', async () => {
      await expectSuccess('fio D2', runCommand('fio', fioArgs(c, 'v2', ['--rw=randwrite', '--bssplit=512/10:4k/40:64k/30:1m/20', '--iodepth=16', '--offset=64M', '--size=64M', '--verify=crc32c', '--verify_fatal=1', '--do_verify=1']), { timeoutMs: 120_000, cwd: c.dir.path }));
    });
    test('D3 four jobs (connections) with fsync every 32 writes, verified', async () => {
      await expectSuccess('fio D3', runCommand('fio', fioArgs(c, 'v3', ['--rw=randwrite', '--bs=16k', '--iodepth=8', '--numjobs=4', '--offset=128M', '--size=16M', '--offset_increment=16M', '--fsync=32', '--verify=crc32c', '--verify_fatal=1', '--do_verify=1']), { timeoutMs: 120_000, cwd: c.dir.path }));
    });
    test('D4 trim', async () => {
      await expectSuccess('fio D4', runCommand('fio', fioArgs(c, 'v4', ['--rw=trim', '--bs=1M', '--offset=192M', '--size=16M']), { timeoutMs: 60_000, cwd: c.dir.path }));
    });
    test('D5 verify detects corruption (negative control)', async () => {
      await expectSuccess('fio D5 write', runCommand('fio', fioArgs(c, 'v5', [...d1, '--do_verify=0']), { timeoutMs: 120_000, cwd: c.dir.path }));
      await expectSuccess('nbdsh corrupt', runCommand('nbdsh', ['-u', c.uri, '-c', 'h.pwrite(b"\\xff"*4096, 5*65536+100)']));
      const result = await runCommand('fio', fioArgs(c, 'v5', [...d1, '--verify_only=1']), { timeoutMs: 120_000, cwd: c.dir.path });
      assert.notEqual(result.code, 0, describeResult('fio verify_only must fail', result));
      assert.match(result.stdout + result.stderr, /84|verify|crc32c/i);
    });
  });
}

function defineLibnbdChecks(c: SuiteContext): void {
  describe('E. nbdsh / python3-libnbd', () => {
    test('E1 one-liners: write/read/flush, size and SR, block status, LIST+ABORT, old EXPORT_NAME path', async () => {
      await expectSuccess('E1 rw', runCommand('nbdsh', ['-u', c.uri, '-c', 'h.pwrite(b"X"*4096, 0); assert h.pread(4096, 0) == b"X"*4096; h.flush()']));
      const caps = await expectSuccess('E1 caps', runCommand('nbdsh', ['-u', c.uri, '-c', 'print(h.get_size(), h.get_structured_replies_negotiated(), h.can_multi_conn())']));
      assert.equal(caps.stdout.trim(), `${c.sizeBytes} True True`);
      const status = await expectSuccess('E1 block status', runCommand('nbdsh', ['--base-allocation', '-u', c.uri, '-c', 'h.block_status(65536, 0, lambda ctx, off, ents, err: print(ctx, off, ents) or 0)']));
      assert.match(status.stdout, /^base:allocation 0 \[/m);
      const list = await expectSuccess('E1 list', runCommand('nbdsh', ['-c', 'h.set_opt_mode(True)', '-c', `h.connect_uri('${c.uri}')`, '-c', 'h.opt_list(lambda n,d: print(repr(n)) or 0)', '-c', 'h.opt_abort()']));
      assert.ok(list.stdout.trim().length > 0);
      const old = await expectSuccess('E1 old', runCommand('nbdsh', ['-c', 'h.set_handshake_flags(0)', '-c', `h.connect_uri('${c.uri}')`, '-c', 'print(h.get_protocol()); h.pread(512,0)']));
      assert.equal(old.stdout.trim(), 'newstyle');
    });
    test('E2 + E3 libnbd battery (error matrix and 13 checks)', async () => {
      const result = await runCommand('/usr/bin/python3', ['-c', LIBNBD_BATTERY_PY, c.uri], { timeoutMs: 180_000 });
      const lines = result.stdout.trim().split('\n').filter((line) => line.startsWith('{'));
      const checks = lines.map((line) => JSON.parse(line) as { check: string; ok: boolean; detail: string });
      const failed = checks.filter((check) => !check.ok);
      assert.equal(checks.length, 13, describeResult('libnbd battery', result));
      assert.deepEqual(failed, [], describeResult('libnbd battery', result));
    });
  });
}
