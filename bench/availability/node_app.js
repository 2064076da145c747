// The availability benchmark's Node worker: the same server as app.lua.
// Run by node_cluster.js (cluster.fork) and by PM2 in cluster mode
// (ecosystem.config.js); both give it PORT and DELAY_MS.
// An HTTP hello world that answers after DELAY_MS (default 5) so that
// requests are in flight when a reload, a kill or a stop happens. With
// CRASH_INSTANCE=K, the worker of instance K throws at startup, every time it
// is restarted; the instance is NODE_APP_INSTANCE under PM2 and INSTANCE
// under node_cluster.js.
'use strict';
const http = require('node:http');

const port = Number(process.env.PORT) || 8080;
const delay = Number(process.env.DELAY_MS ?? 5);
const instance = process.env.NODE_APP_INSTANCE ?? process.env.INSTANCE;
const crash = process.env.CRASH_INSTANCE;

if (crash !== undefined && crash !== '' && crash === instance) {
  throw new Error(`instance ${instance} cannot start`);
}

const body = 'Hello, world!\n';
const server = http.createServer((req, res) => {
  setTimeout(() => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(body);
  }, delay);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${port} pid ${process.pid} instance ${instance}`);
});

// Graceful stop the way PM2's documentation shows it: PM2 stops (and, in a
// reload, retires) a worker with SIGINT, then SIGKILL after kill_timeout.
// Close the server (no new connections; Node closes idle keep-alive ones)
// and exit once it is closed. Under node_cluster.js the master uses
// worker.disconnect() instead, which closes the servers the same way.
process.on('SIGINT', () => {
  server.close(() => process.exit(0));
});
