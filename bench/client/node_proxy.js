// bench/client: a reverse proxy on Node's cluster module (WORKERS workers,
// 2 by default), keep-alive to the upstream, bodies piped.
//   UPSTREAM=http://127.0.0.1:8081 PORT=8080 node bench/client/node_proxy.js
'use strict';
const cluster = require('node:cluster');
const http = require('node:http');

const port = Number(process.env.PORT) || 8080;
const workers = Number(process.env.WORKERS) || 2;
const upstream = new URL(process.env.UPSTREAM || 'http://127.0.0.1:8081');

if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  const stop = () => {
    for (const id in cluster.workers) cluster.workers[id].process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  http.createServer((req, res) => {
    const up = http.request({
      host: upstream.hostname, port: upstream.port, method: req.method,
      path: req.url, headers: req.headers, agent,
    }, (ures) => {
      res.writeHead(ures.statusCode, ures.headers);
      ures.pipe(res);
    });
    up.on('error', (err) => { res.writeHead(502); res.end(String(err)); });
    req.pipe(up);
  }).listen(port);
}
