'use strict';
const fs = require('node:fs');

const FILE = 'data/watchlist.json';

function load() {
  return JSON.parse(fs.readFileSync(FILE, 'utf8'));
}

function save(list) {
  fs.mkdirSync('data', { recursive: true });
  fs.writeFileSync(FILE, JSON.stringify(list));
}

module.exports = { load, save };
