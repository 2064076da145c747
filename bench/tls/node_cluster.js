// The TLS benchmark's Node peer: the cluster module with 2 workers (or
// WORKERS), default scheduling (round-robin in the primary), https in each
// worker with Node's defaults (each worker has its own ticket keys).
//   PORT=8443 CERT=cert.pem KEY=key.pem node bench/tls/node_cluster.js
'use strict';
const cluster = require('node:cluster');
const fs = require('node:fs');
const https = require('node:https');

const port = Number(process.env.PORT) || 8443;
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
  const opts = { key: fs.readFileSync(process.env.KEY), cert: fs.readFileSync(process.env.CERT) };
  https.createServer(opts, (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(body);
  }).listen(port);
}
