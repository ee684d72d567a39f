'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { bySymbol } = require('./group');

test('sums per symbol', () => {
  assert.deepEqual(bySymbol([{ symbol: 'A', qty: 1 }, { symbol: 'A', qty: 2 }]), { A: 3 });
});
