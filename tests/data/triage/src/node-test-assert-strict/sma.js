'use strict';

/** Simple moving average of each full window. */
function sma(values, window) {
  const out = [];
  for (let i = window; i < values.length; i++) {
    const slice = values.slice(i - window, i);
    out.push(slice.reduce((a, b) => a + b, 0) / window);
  }
  return out;
}

module.exports = { sma };
