'use strict';

const RANGES = [[0, 59], [0, 23], [1, 31], [1, 12], [0, 6]];

function parseCron(expr) {
  const fields = expr.trim().split(/\s+/);
  return fields.map((f, i) => {
    if (f === '*') return null;
    const n = Number(f);
    const [lo, hi] = RANGES[i];
    if (n < lo || n > hi) throw new RangeError(`field ${i} out of range: ${f}`);
    return n;
  });
}

module.exports = { parseCron };
