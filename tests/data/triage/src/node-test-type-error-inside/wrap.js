'use strict';

function wrap(text, width) {
  const lines = [];
  let line = '';
  for (const word of text.split(' ')) {
    if ((line + ' ' + word).trim().length > width) {
      lines.push(line);
      line = word;
    } else {
      line = (line + ' ' + word).trim();
    }
  }
  lines.push(line);
  return lines;
}

function wrapParagraphs(paragraphs, width) {
  return paragraphs.map((p) => wrap(p.text, width));
}

module.exports = { wrap, wrapParagraphs };
