'use strict';
const fs = require('fs');

const FILE = '.visits.json';

function read() {
  return fs.existsSync(FILE) ? JSON.parse(fs.readFileSync(FILE, 'utf8')) : null;
}

function record(page) {
  const data = read() || {};
  data[page] = (data[page] || 0) + 1;
  fs.writeFileSync(FILE, JSON.stringify(data));
  return data[page];
}

module.exports = { read, record };
