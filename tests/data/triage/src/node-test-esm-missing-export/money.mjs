export function toCents(amount) {
  return Math.round(Number(amount) * 100);
}

export function format(cents, currency = 'EUR') {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).format(cents / 100);
}
