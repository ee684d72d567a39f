'use strict';

function sleep(ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) { /* stands in for a slow token signature */ }
}

function newSession(user) {
  const issued = Math.floor(Date.now() / 1000);
  sleep(400);
  return { user, issued, token: `${user}.${Math.floor(Date.now() / 1000)}` };
}

module.exports = { newSession };
