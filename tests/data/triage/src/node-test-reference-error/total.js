function formatTotal(amount) {
  return `${amount.toFixed(2)} ${currency}`;
}
module.exports = { formatTotal };
