'use strict';

function toSnake(s) {
  return s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

function toKebab(s) {
  return toSnake(s).replace(/_/g, '-');
}

module.exports = { toSnake, toKebab };
