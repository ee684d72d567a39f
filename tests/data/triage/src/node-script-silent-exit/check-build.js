'use strict';
const fs = require('node:fs');

const ok = fs.existsSync('dist/index.js') && fs.statSync('dist/index.js').size > 0;
process.exit(ok ? 0 : 4);
