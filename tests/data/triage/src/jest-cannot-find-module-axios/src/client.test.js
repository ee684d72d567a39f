const { temperature } = require('./client');

test('reads the temperature', async () => {
  const http = { get: async () => ({ data: { main: { temp: 21.5 } } }) };
  await expect(temperature('Oslo', http)).resolves.toBe(21.5);
});
