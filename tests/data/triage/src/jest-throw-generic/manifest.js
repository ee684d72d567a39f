'use strict';

function validManifest(m) {
  return Boolean(m && m.name && m.version && Array.isArray(m.files) && m.files.length > 0);
}

module.exports = { validManifest };
