'use strict';
const _ = require('lodash');

function bySymbol(trades) {
  return _.mapValues(_.groupBy(trades, 'symbol'), (ts) => _.sumBy(ts, 'qty'));
}

module.exports = { bySymbol };
