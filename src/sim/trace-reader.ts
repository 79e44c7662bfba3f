// Streams a block trace: CSV lines `op,offset_bytes,length_bytes` with `op` R or
// W (either case), `#` comment lines and blank lines ignored.
//
// Responsibility: turn a file into requests, one callback per request, without
// holding the file in memory. Malformed lines raise a BlockcacheError naming
// the file and line number; nothing else is thrown for bad input.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { BlockcacheError } from '../stdx/errors.js';

export type RequestVisitor = (isWrite: boolean, offsetBytes: number, lengthBytes: number) => void;

export interface TraceSummary {
  readonly requests: number;
  readonly lines: number;
}

const DIGITS = /^\d+$/;

/** Parses one non-comment line; throws a one-line BlockcacheError when malformed. */
export function parseTraceLine(line: string, where: string, visit: RequestVisitor): void {
  const fields = line.split(',');
  if (fields.length !== 3) {
    throw new BlockcacheError('BAD_ARGUMENT', `${where}: expected 'op,offset_bytes,length_bytes', got '${clip(line)}'`);
  }
  const op = fields[0]!.trim().toUpperCase();
  if (op !== 'R' && op !== 'W') throw new BlockcacheError('BAD_ARGUMENT', `${where}: op must be R or W, got '${clip(fields[0]!)}'`);
  const offsetBytes = parseBytes(fields[1]!, 'offset_bytes', where);
  const lengthBytes = parseBytes(fields[2]!, 'length_bytes', where);
  if (!Number.isSafeInteger(offsetBytes + lengthBytes)) throw new BlockcacheError('BAD_ARGUMENT', `${where}: request ends beyond 2^53 bytes`);
  visit(op === 'W', offsetBytes, lengthBytes);
}

function parseBytes(text: string, what: string, where: string): number {
  const trimmed = text.trim();
  const value = Number(trimmed);
  if (!DIGITS.test(trimmed) || !Number.isSafeInteger(value)) {
    throw new BlockcacheError('BAD_ARGUMENT', `${where}: ${what} must be a whole number of bytes, got '${clip(text)}'`);
  }
  return value;
}

function clip(text: string): string {
  const LINE_QUOTE_MAX = 60;
  return text.length > LINE_QUOTE_MAX ? `${text.slice(0, LINE_QUOTE_MAX)}…` : text;
}

/** Streams `path`, calling `visit` for every request in order. */
export async function readTrace(path: string, visit: RequestVisitor): Promise<TraceSummary> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('ready', () => resolve());
    stream.once('error', reject);
  });
  try {
    await opened;
  } catch (error) {
    throw new BlockcacheError('BAD_ARGUMENT', `cannot read trace ${path}: ${(error as Error).message}`, { cause: error });
  }
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let lineNumber = 0;
  let requests = 0;
  try {
    for await (const line of lines) {
      lineNumber++;
      const trimmed = line.trim();
      if (trimmed === '' || trimmed.startsWith('#')) continue;
      parseTraceLine(trimmed, `${path} line ${lineNumber}`, visit);
      requests++;
    }
  } catch (error) {
    stream.destroy();
    if (error instanceof BlockcacheError) throw error;
    throw new BlockcacheError('BAD_ARGUMENT', `cannot read trace ${path}: ${(error as Error).message}`, { cause: error });
  }
  return { requests, lines: lineNumber };
}

/** Calls `visit` once per cache block the request touches (floor(off/bs) .. floor((off+len-1)/bs)). */
export function forEachBlock(offsetBytes: number, lengthBytes: number, blockBytes: number, visit: (originBlock: number) => void): void {
  if (lengthBytes === 0) return;
  const first = Math.floor(offsetBytes / blockBytes);
  const last = Math.floor((offsetBytes + lengthBytes - 1) / blockBytes);
  for (let block = first; block <= last; block++) visit(block);
}
