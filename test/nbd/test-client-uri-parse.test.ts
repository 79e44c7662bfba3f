// NBD URI parsing (doc/uri.md): schemes, default port, percent-decoding, TLS refusal.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseNbdUri } from '../../src/nbd/uri.js';
import { isBlockcacheError } from '../../src/stdx/errors.js';

test('nbd:// URIs: host, default and explicit port, export names', () => {
  assert.deepEqual(parseNbdUri('nbd://example.com'), { transport: 'tcp', host: 'example.com', port: 10809, exportName: '' });
  assert.deepEqual(parseNbdUri('nbd://h:1234/'), { transport: 'tcp', host: 'h', port: 1234, exportName: '' });
  assert.equal(parseNbdUri('nbd://h//disk').exportName, '/disk');
  assert.equal(parseNbdUri('nbd://h/a%20b').exportName, 'a b');
  assert.deepEqual(parseNbdUri('nbd://[::1]:99/x'), { transport: 'tcp', host: '::1', port: 99, exportName: 'x' });
});

test('nbd+unix:// URIs: socket query parameter, percent-decoded, + kept', () => {
  assert.deepEqual(parseNbdUri('nbd+unix:///disk?socket=/tmp/a%20b+c.sock'),
    { transport: 'unix', socketPath: '/tmp/a b+c.sock', exportName: 'disk' });
  assert.equal(parseNbdUri('nbd+unix:///?socket=/s').exportName, '');
});

test('bad and TLS URIs are refused with clear errors', () => {
  assert.throws(() => parseNbdUri('nbds://h/x'), (error) => isBlockcacheError(error, 'DEVICE_OPEN') && /TLS/.test(error.message));
  assert.throws(() => parseNbdUri('nbds+unix:///x?socket=/s'), (error) => isBlockcacheError(error, 'DEVICE_OPEN'));
  assert.throws(() => parseNbdUri('nbd+unix:///x'), (error) => isBlockcacheError(error, 'BAD_ARGUMENT') && /socket/.test(error.message));
  assert.throws(() => parseNbdUri('http://h/x'), (error) => isBlockcacheError(error, 'BAD_ARGUMENT'));
  assert.throws(() => parseNbdUri('nbd://h:99999/x'), (error) => isBlockcacheError(error, 'BAD_ARGUMENT'));
});
