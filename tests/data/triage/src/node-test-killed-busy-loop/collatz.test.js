'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { steps, longestBelow } = require('./collatz');

test('steps of 6', () => assert.equal(steps(6), 8));
test('longest below 10', () => assert.equal(longestBelow(10), 9));
