'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { sparkline } = require('../chart.js');

test('sparkline renders a PNG', () => {
  const png = sparkline([1, 2, 3], 60, 20);
  assert.strictEqual(png.subarray(1, 4).toString(), 'PNG');
});
