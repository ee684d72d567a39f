'use strict';

function ema(prices, span, smoothing) {
  const k = smoothing / (span + 1);
  const out = [];
  let prev;
  for (const p of prices) {
    prev = prev === undefined ? p : p * k + prev * (1 - k);
    out.push(prev);
  }
  return out;
}

module.exports = { ema };
