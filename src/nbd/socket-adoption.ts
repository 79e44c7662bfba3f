// Reading an accepted connection into buffers the connection chooses.
//
// net.Socket's `onread` option makes a socket read into caller-supplied memory
// (a reused receive buffer, or a WRITE payload itself) instead of a fresh
// 64 KiB Buffer per read, but Node offers it only to sockets made with
// `new net.Socket`, not to the ones its server accepts. So the accepted socket
// (from a server made with `pauseOnConnect`, so it never read) gives its handle
// to a new net.Socket made with `onread`; the accepted one, left without a
// handle, stands in for the connection in the server's bookkeeping until the new
// one closes, and destroying it then counts the connection gone exactly as Node
// does for its own sockets (connection count, maxConnections, close()).
//
// Why: a profile of 1 MiB writes had the event loop saturated, 43% of it in the
// socket read path: page faults on each fresh read buffer, then copying every
// payload out of those chunks. See docs/ARCHITECTURE.md, "Receiving requests".
//
// Relies on two internals that Node has kept since v12: `socket._handle` and
// the Socket constructor's `handle` option. Where they are missing, adoptSocket
// returns null and the caller reads through 'data' events.
import { Socket } from 'node:net';

export interface ReadBuffers {
  /** The memory the next read goes into (asked after every read). */
  next(): Buffer;
  /** `bytes` (> 0) arrived at the start of `buffer`, the last one next() gave. */
  onRead(bytes: number, buffer: Buffer): void;
}

interface SocketInternals {
  _handle: unknown;
}

/**
 * Moves a paused accepted socket's handle to a new Socket that reads through
 * `reader`; null (nothing changed) if this Node does not expose the handle.
 */
export function adoptSocket(accepted: Socket, reader: ReadBuffers, allowHalfOpen: boolean): Socket | null {
  const internals = accepted as unknown as SocketInternals;
  const handle = internals._handle;
  if (handle === null || typeof handle !== 'object' || accepted.destroyed) return null;
  internals._handle = null; // the accepted socket must never touch it again (a destroy() would close it)
  const adopted = new Socket({
    handle, allowHalfOpen, readable: true, writable: true,
    onread: { buffer: () => reader.next(), callback: (bytes: number, buffer: Uint8Array) => { reader.onRead(bytes, buffer as Buffer); } },
  } as ConstructorParameters<typeof Socket>[0]);
  adopted.once('close', () => accepted.destroy());
  return adopted;
}
