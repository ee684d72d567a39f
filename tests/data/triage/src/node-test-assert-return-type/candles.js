'use strict';

function parseCandles(text) {
  const out = new Map();
  for (const line of text.trim().split('\n')) {
    const [time, open, high, low, close] = line.split(',');
    out.set(time, { open: +open, high: +high, low: +low, close: +close });
  }
  return out;
}

module.exports = { parseCandles };
