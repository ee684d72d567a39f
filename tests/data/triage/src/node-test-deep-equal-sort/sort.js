function sortByPrice(prices) {
  return [...prices].sort();
}
module.exports = { sortByPrice };
