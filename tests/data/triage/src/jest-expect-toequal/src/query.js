'use strict';

function parseQuery(qs) {
  const out = {};
  for (const pair of qs.replace(/^\?/, '').split('&')) {
    const [k, v] = pair.split('=');
    out[k] = decodeURIComponent(v);
  }
  return out;
}

module.exports = { parseQuery };
