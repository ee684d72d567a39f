'use strict';
const axios = require('axios');

async function temperature(city, http = axios) {
  const { data } = await http.get(`https://api.example/weather/${encodeURIComponent(city)}`);
  return data.main.temp;
}

module.exports = { temperature };
