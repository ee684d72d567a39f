'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { sma } = require('../sma');

test('window of two', () => {
  assert.deepStrictEqual(sma([1, 2, 3, 4], 2), [1.5, 2.5, 3.5]);
});

test('last value', () => {
  const out = sma([10, 20, 30], 3);
  assert.strictEqual(out[out.length - 1], 20);
});
