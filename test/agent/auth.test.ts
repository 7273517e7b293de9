import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokensEqual } from '../../src/agent/auth.js';

test('tokens compare in constant time', () => {
  assert.equal(tokensEqual('abc', 'abc'), true);
  assert.equal(tokensEqual('abc', 'abd'), false);
  assert.equal(tokensEqual('', 'abc'), false);
});
