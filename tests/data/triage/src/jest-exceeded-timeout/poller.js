'use strict';

function waitUntil(check, intervalMs = 100) {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (check()) {
        clearInterval(timer);
        resolve();
      }
    }, intervalMs);
  });
}

module.exports = { waitUntil };
