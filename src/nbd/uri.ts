// Parsing of NBD URIs (NetworkBlockDevice/nbd doc/uri.md) for the client.
//
//   nbd://HOST[:PORT]/EXPORT            TCP (default port 10809)
//   nbd+unix:///EXPORT?socket=PATH      Unix socket
//   nbds://, nbds+unix://               TLS: refused, we do not implement TLS
//
// The export name is the path without its leading '/', percent-decoded.
// Pure; no state.
import { BlockcacheError } from '../stdx/errors.js';
import { NBD_DEFAULT_PORT } from './protocol.js';

export type NbdAddress =
  | { readonly transport: 'tcp'; readonly host: string; readonly port: number; readonly exportName: string }
  | { readonly transport: 'unix'; readonly socketPath: string; readonly exportName: string };

const PORT_MAX = 65535;

export function isNbdUri(text: string): boolean {
  return /^nbds?(\+unix)?:\/\//i.test(text);
}

export function parseNbdUri(uri: string): NbdAddress {
  const bad = (why: string): BlockcacheError => new BlockcacheError('BAD_ARGUMENT', `${uri}: not a valid NBD URI (${why})`);
  const schemeMatch = /^([a-z+]+):\/\//i.exec(uri);
  if (schemeMatch === null) throw bad('expected nbd:// or nbd+unix://');
  const scheme = schemeMatch[1]!.toLowerCase();
  if (scheme === 'nbds' || scheme === 'nbds+unix') {
    throw new BlockcacheError('DEVICE_OPEN', `${uri}: TLS (${scheme}://) is not supported; use nbd:// or nbd+unix://`);
  }
  if (scheme !== 'nbd' && scheme !== 'nbd+unix') throw bad(`unknown scheme ${scheme}://`);
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw bad('malformed');
  }
  const exportName = decode(url.pathname.replace(/^\//, ''), bad);
  if (scheme === 'nbd+unix') {
    if (url.host !== '') throw bad('a Unix socket URI has no host');
    const socket = queryParameter(url.search, 'socket', bad);
    if (socket === null || socket === '') throw bad('missing ?socket=PATH');
    return { transport: 'unix', socketPath: socket, exportName };
  }
  if (url.hostname === '') throw bad('missing host');
  const port = url.port === '' ? NBD_DEFAULT_PORT : Number(url.port);
  if (!Number.isInteger(port) || port <= 0 || port > PORT_MAX) throw bad('bad port');
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { transport: 'tcp', host, port, exportName };
}

/** Reads one query parameter with percent-decoding only ('+' stays '+', unlike URLSearchParams). */
function queryParameter(search: string, name: string, bad: (why: string) => BlockcacheError): string | null {
  for (const pair of search.replace(/^\?/, '').split('&')) {
    const equals = pair.indexOf('=');
    const key = equals < 0 ? pair : pair.slice(0, equals);
    if (decode(key, bad) === name) return decode(equals < 0 ? '' : pair.slice(equals + 1), bad);
  }
  return null;
}

function decode(text: string, bad: (why: string) => BlockcacheError): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw bad('bad percent-encoding in the export name');
  }
}
