'use strict';
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { wrap, wrapParagraphs } = require('./wrap');

describe('wrap', () => {
  it('breaks at the width', () => {
    assert.deepEqual(wrap('the quick brown fox', 10), ['the quick', 'brown fox']);
  });

  it('wraps each paragraph', () => {
    assert.deepEqual(wrapParagraphs(['aa bb', 'cc'], 2), [['aa', 'bb'], ['cc']]);
  });
});
