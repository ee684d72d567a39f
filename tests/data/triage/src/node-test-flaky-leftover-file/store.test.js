'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { load, save } = require('./store');

test('load returns an array', () => {
  assert.ok(Array.isArray(load()));
});

test('save then load', () => {
  save(['AAPL']);
  assert.deepEqual(load(), ['AAPL']);
});
