// The availability benchmark's Node peer: a cluster primary with 2 workers
// (WORKERS) running node_app.js, doing in JavaScript what luacluster's
// managed mode does, written the way Node's cluster documentation shows:
//   - SIGUSR2: rolling restart, one worker at a time: fork a replacement, wait
//     for its 'listening', then worker.disconnect() the old one (its servers
//     close, in-flight requests finish, it exits when its connections are
//     gone), with worker.kill() after KILL_TIMEOUT ms (default 5000, as
//     luacluster's --kill-timeout) if it has not exited by then, as the docs'
//     example does; prints "RESTARTED" when done;
//   - a worker that dies without being disconnected is forked again at once,
//     with the same instance number (env INSTANCE, like PM2's NODE_APP_INSTANCE);
//   - SIGTERM/SIGINT: disconnect every worker (same timeout), exit 0 when all
//     have exited.
//   PORT=8080 DELAY_MS=5 node bench/availability/node_cluster.js
'use strict';
const cluster = require('node:cluster');
const path = require('node:path');

const workers = Number(process.env.WORKERS) || 2;
const killTimeout = Number(process.env.KILL_TIMEOUT) || 5000;

const log = (msg) => console.log(`[primary ${process.pid}] ${new Date().toISOString()} ${msg}`);

cluster.setupPrimary({ exec: path.join(__dirname, 'node_app.js') });

const instanceOf = new Map(); // worker.id -> instance number
let stopping = false;
let reloading = false;

function fork(instance) {
  const worker = cluster.fork({ INSTANCE: String(instance) });
  instanceOf.set(worker.id, instance);
  log(`worker ${worker.id} (instance ${instance}) forked, pid ${worker.process.pid}`);
  return worker;
}

// Disconnects a worker and resolves when it has exited; kills it if it is
// still alive after killTimeout.
function retire(worker) {
  return new Promise((resolve) => {
    if (worker.isDead()) return resolve();
    const timer = setTimeout(() => {
      log(`worker ${worker.id} still alive ${killTimeout} ms after disconnect: kill`);
      worker.kill();
    }, killTimeout);
    worker.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    worker.disconnect();
  });
}

cluster.on('listening', (worker, address) => {
  log(`worker ${worker.id} (instance ${instanceOf.get(worker.id)}) listening on ${address.port}`);
});

cluster.on('exit', (worker, code, signal) => {
  const instance = instanceOf.get(worker.id);
  instanceOf.delete(worker.id);
  log(`worker ${worker.id} (instance ${instance}) pid ${worker.process.pid} exited (${signal || code})` +
      (worker.exitedAfterDisconnect ? ' after disconnect' : ''));
  if (stopping) {
    if (Object.keys(cluster.workers).length === 0) {
      log('stopped');
      process.exit(0);
    }
  } else if (!worker.exitedAfterDisconnect) {
    fork(instance);
  }
});

process.on('SIGUSR2', async () => {
  if (reloading || stopping) return;
  reloading = true;
  log('SIGUSR2: rolling restart');
  for (const old of Object.values(cluster.workers)) {
    if (stopping) break;
    if (!old || old.isDead() || old.exitedAfterDisconnect) continue;
    const fresh = fork(instanceOf.get(old.id));
    const ok = await new Promise((resolve) => {
      const onExit = () => resolve(false);
      fresh.once('exit', onExit);
      fresh.once('listening', () => {
        fresh.removeListener('exit', onExit);
        resolve(true);
      });
    });
    if (!ok) {
      log('replacement died before listening: rolling restart stopped');
      break;
    }
    await retire(old);
  }
  reloading = false;
  log('RESTARTED');
});

const stop = (signal) => {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping ${Object.keys(cluster.workers).length} worker(s)`);
  const all = Object.values(cluster.workers);
  if (all.length === 0) process.exit(0);
  for (const worker of all) retire(worker);
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

for (let i = 0; i < workers; i++) fork(i);
