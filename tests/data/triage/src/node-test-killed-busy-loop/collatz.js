'use strict';

function steps(n) {
  let count = 0;
  while (n !== 1) {
    n = n % 2 === 0 ? n / 2 : 3 * n + 1;
    count++;
  }
  return count;
}

function longestBelow(limit) {
  let best = 0;
  let arg = 0;
  for (let i = 0; i < limit; i++) {
    const s = steps(i);
    if (s > best) {
      best = s;
      arg = i;
    }
  }
  return arg;
}

module.exports = { steps, longestBelow };
