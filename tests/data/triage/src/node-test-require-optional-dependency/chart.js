'use strict';
const { createCanvas } = require('canvas');

function sparkline(prices, width, height) {
  const canvas = createCanvas(width, height);
  return canvas.toBuffer('image/png');
}

module.exports = { sparkline };
