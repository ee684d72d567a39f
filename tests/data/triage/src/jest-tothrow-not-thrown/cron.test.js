const { parseCron } = require('./cron');

test('every day at 03:30', () => {
  expect(parseCron('30 3 * * *')).toEqual([30, 3, null, null, null]);
});

test('rejects a minute of 60', () => {
  expect(() => parseCron('60 * * * *')).toThrow(RangeError);
});

test('rejects the wrong number of fields', () => {
  expect(() => parseCron('* * *')).toThrow('expected 5 fields');
});

test('rejects words', () => {
  expect(() => parseCron('x * * * *')).toThrow();
});
