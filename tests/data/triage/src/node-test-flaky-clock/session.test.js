'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { newSession } = require('./session');

test('token carries the issue time', () => {
  const s = newSession('ann');
  assert.equal(s.token, `ann.${s.issued}`);
});
