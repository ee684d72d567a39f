import test from 'node:test';
import assert from 'node:assert/strict';
import { toCents, formatMoney } from './money.mjs';

test('cents', () => assert.equal(toCents('12.34'), 1234));
test('format', () => assert.equal(formatMoney(1234, 'USD'), '$12.34'));
