'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { Queue } = require('./jobs');

test('waitFor resolves once the job is done', async () => {
  const q = new Queue();
  let ran = false;
  q.submit(7, () => { ran = true; });
  await q.waitFor(7);
  assert.ok(ran);
});
