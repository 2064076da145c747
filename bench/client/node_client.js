// bench/client: Node 20's http.get with a keep-alive agent, one process.
//   URL=http://127.0.0.1:8081/ N=20000 CONC=1 node bench/client/node_client.js
// WARMUP requests go first; prints "RESULT <requests/s>".
'use strict';
const http = require('node:http');

const url = new URL(process.env.URL);
const n = Number(process.env.N) || 20000;
const conc = Number(process.env.CONC) || 1;
const warmup = Number(process.env.WARMUP) || Math.floor(n / 10);
const agent = new http.Agent({ keepAlive: true, maxSockets: conc, maxFreeSockets: conc });
const options = { host: url.hostname, port: url.port, path: url.pathname, agent };

function run(count, after) {
  let started = 0, done = 0;
  const t0 = process.hrtime.bigint();
  function one() {
    if (started >= count) return;
    started++;
    http.get(options, (res) => {
      res.on('data', () => {});
      res.on('end', () => {
        done++;
        if (done === count) after(Number(process.hrtime.bigint() - t0) / 1e9);
        else one();
      });
    }).on('error', (err) => { throw err; });
  }
  for (let i = 0; i < conc; i++) one();
}

run(warmup, () => run(n, (seconds) => {
  console.log(`RESULT ${Math.round(n / seconds)}`);
  process.exit(0);
}));
