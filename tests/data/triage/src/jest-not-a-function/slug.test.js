const slug = require('./slug');

test('slugify', () => {
  expect(slug.slugify('Hello, World!')).toBe('hello-world');
});

test('unique slugs get a suffix', () => {
  expect(slug.uniqueSlug('a', ['a', 'a-1'])).toBe('a-2');
});
