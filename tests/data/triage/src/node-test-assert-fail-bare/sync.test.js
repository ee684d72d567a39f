'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { syncFolders } = require('./sync');

test('sync', () => {
  const dest = { a: 1 };
  if (!syncFolders({ a: 1, b: 2 }, dest)) {
    assert.fail();
  }
});
