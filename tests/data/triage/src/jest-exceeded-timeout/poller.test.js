const { waitUntil } = require('./poller');

test('resolves when the flag flips', async () => {
  const state = { ready: false };
  setTimeout(() => { state.ready = 'yes'; }, 200);
  await waitUntil(() => state.ready === true);
  expect(state.ready).toBeTruthy();
});
