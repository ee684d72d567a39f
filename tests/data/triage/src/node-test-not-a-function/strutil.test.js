'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const strutil = require('./strutil');

test('snake', () => assert.equal(strutil.toSnake('requestId'), 'request_id'));
test('camel', () => assert.equal(strutil.toCamel('request_id'), 'requestId'));
test('kebab', () => assert.equal(strutil.toKebab('requestId'), 'request-id'));
