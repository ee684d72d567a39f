const test = require('node:test');
const assert = require('node:assert');
const { formatTotal } = require('./total');

test('formats with two decimals', () => {
  assert.strictEqual(formatTotal(3), '3.00 EUR');
});
