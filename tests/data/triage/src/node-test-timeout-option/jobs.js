'use strict';

class Queue {
  constructor() {
    this.done = new Set();
  }

  submit(id, work) {
    Promise.resolve().then(work).then(() => this.done.add(String(id)));
  }

  async waitFor(id, pollMs = 50) {
    while (!this.done.has(id)) {
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
}

module.exports = { Queue };
