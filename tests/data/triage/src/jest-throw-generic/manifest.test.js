const { validManifest } = require('./manifest');

test('manifest', () => {
  const ok = validManifest({ name: 'app', version: '1.0.0', files: [] });
  if (!ok) throw new Error('failed');
});
