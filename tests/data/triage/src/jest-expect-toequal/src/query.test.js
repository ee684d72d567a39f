const { parseQuery } = require('./query');

describe('parseQuery', () => {
  test('plain pairs', () => {
    expect(parseQuery('?a=1&b=two')).toEqual({ a: '1', b: 'two' });
  });

  test('repeated keys collect into arrays', () => {
    expect(parseQuery('tag=x&tag=y')).toEqual({ tag: ['x', 'y'] });
  });

  test('plus means space', () => {
    expect(parseQuery('q=hello+world')).toEqual({ q: 'hello world' });
  });
});
