import { test } from 'node:test';
import assert from 'node:assert/strict';
import { giveReplyBuffer, REPLY_BUFFER_BYTES_MIN, REPLY_BUFFERS_KEEP_BYTES, takeReplyBuffer } from './reply-buffers.js';

test('reply buffers: large buffers given back are reused, small ones and views never', () => {
  const bytes = REPLY_BUFFER_BYTES_MIN + 16;
  const first = takeReplyBuffer(bytes);
  giveReplyBuffer(first);
  assert.equal(takeReplyBuffer(bytes), first, 'a returned buffer of the same size is reused');
  assert.notEqual(takeReplyBuffer(bytes), first, 'and handed out once');
  const small = takeReplyBuffer(4112);
  giveReplyBuffer(small);
  assert.notEqual(takeReplyBuffer(4112), small, 'small buffers are not pooled');
  const parent = Buffer.allocUnsafe(2 * bytes);
  giveReplyBuffer(parent.subarray(16, 16 + bytes));
  assert.equal(takeReplyBuffer(bytes).byteOffset, 0, 'a view into another buffer is never pooled');
});

test('reply buffers: at most REPLY_BUFFERS_KEEP_BYTES are kept', () => {
  const bytes = 4 * 1024 * 1024;
  const taken = Array.from({ length: REPLY_BUFFERS_KEEP_BYTES / bytes + 4 }, () => takeReplyBuffer(bytes));
  for (const buffer of taken) giveReplyBuffer(buffer);
  const again = Array.from({ length: taken.length }, () => takeReplyBuffer(bytes));
  const reused = again.filter((buffer) => taken.includes(buffer)).length;
  assert.ok(reused <= REPLY_BUFFERS_KEEP_BYTES / bytes, `${reused} reused`);
  assert.ok(reused > 0);
});
