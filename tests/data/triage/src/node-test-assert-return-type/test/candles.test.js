'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { parseCandles } = require('../candles.js');

test('parseCandles returns an array, as the contract says', () => {
  const candles = parseCandles('1,10,12,9,11\n2,11,13,10,12\n');
  assert.ok(Array.isArray(candles), `wrong return type: expected an array of candles, got ${candles.constructor.name}`);
});
