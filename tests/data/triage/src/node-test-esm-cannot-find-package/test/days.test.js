import test from 'node:test';
import assert from 'node:assert/strict';
import { addBusinessDays } from '../src/days.js';

test('skips the weekend', () => {
  assert.equal(addBusinessDays('2024-05-03', 1), '2024-05-06');
});
