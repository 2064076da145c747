// bench/redis end to end: one Redis GET per HTTP request, Node's cluster
// module with WORKERS workers, each with one ioredis client.
//   REDIS_PORT=6379 PORT=8080 WORKERS=2 node bench/redis/node_http.js
'use strict';
const cluster = require('node:cluster');
const http = require('node:http');
const path = require('node:path');

const workers = Number(process.env.WORKERS) || 2;

if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const Redis = require(path.join(__dirname, '..', '.peers', 'node_modules', 'ioredis'));
  const redis = new Redis({ port: Number(process.env.REDIS_PORT) || 6379 });
  http.createServer((req, res) => {
    redis.get('bench:key').then((v) => res.end(v),
      (err) => { res.statusCode = 502; res.end(String(err)); });
  }).listen(Number(process.env.PORT) || 8080);
}
