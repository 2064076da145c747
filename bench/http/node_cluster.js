// The benchmark's Node peer: the cluster module with 2 workers (or WORKERS),
// default scheduling (round-robin in the primary, as Node does on Linux).
//   PORT=8080 node bench/http/node_cluster.js
'use strict';
const cluster = require('node:cluster');
const http = require('node:http');

const port = Number(process.env.PORT) || 8080;
const workers = Number(process.env.WORKERS) || 2;
const body = 'Hello, world!\n';

if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  let stopping = false;
  const stop = () => {
    stopping = true;
    for (const id in cluster.workers) cluster.workers[id].process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  cluster.on('exit', () => {
    if (stopping && Object.keys(cluster.workers).length === 0) process.exit(0);
  });
} else {
  http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(body);
  }).listen(port);
}
