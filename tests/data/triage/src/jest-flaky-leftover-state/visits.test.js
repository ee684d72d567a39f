const { read, record } = require('./visits');

test('the store starts as an object', () => {
  expect(read()).not.toBeNull();
});

test('record counts visits', () => {
  expect(record('/home')).toBeGreaterThan(0);
});
