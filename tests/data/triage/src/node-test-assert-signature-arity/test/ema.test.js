'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { ema } = require('../ema.js');

test('ema has the signature of the contract: ema(prices, span)', () => {
  assert.strictEqual(ema.length, 2, 'ema signature differs from the contract: expected (prices, span)');
});

test('ema of a constant series is the series', () => {
  assert.deepStrictEqual(ema([5, 5, 5], 2), [5, 5, 5]);
});
