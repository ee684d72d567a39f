const test = require('node:test');
const assert = require('node:assert');
const { sortByPrice } = require('./sort');

test('sorts numerically', () => {
  assert.deepStrictEqual(sortByPrice([100, 25, 3]), [3, 25, 100]);
});
