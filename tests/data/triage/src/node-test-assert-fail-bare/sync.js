'use strict';

function syncFolders(src, dest) {
  const missing = Object.keys(src).filter((k) => !(k in dest));
  for (const k of missing) dest[k] = src[k];
  return missing.length === 0;
}

module.exports = { syncFolders };
