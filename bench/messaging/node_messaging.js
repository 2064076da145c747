// bench/messaging/node_messaging.js - Node's side of the messaging benchmark:
// the same steps as lc_messaging.lua with Node's cluster module. Node has no
// broadcast or request/reply, so this is what an app writes instead: a loop
// of worker.send() in the master (a worker's broadcast is relayed by it),
// and requests as messages with an id, a Map of pending promises and a
// timer per request (the timeout luacluster's requests have too).
//
//   node bench/messaging/node_messaging.js [bcast=N] [rt=N] [conc=N]
//
// Prints RESULT {json}.
'use strict';
const cluster = require('cluster');

function param(name, dflt) {
  for (const a of process.argv.slice(2)) {
    const m = /^(\w+)=(\d+)$/.exec(a);
    if (m && m[1] === name) return Number(m[2]);
  }
  return dflt;
}

const N_BCAST = param('bcast', 200000);
const N_RT = param('rt', 20000);
const CONC = param('conc', 64);
const ACK = 2000, WINDOW = 20000, BATCH = 1000, TIMEOUT = 10000;
const MSG_DATA = 'abcdefghijklmnopqrst';

// Sends n broadcasts with send(i), BATCH per loop turn, while fewer than
// WINDOW are unacknowledged.
function windowed(n, send, acked, onCredit) {
  let sent = 0;
  const burst = () => {
    const last = Math.min(n, sent + BATCH, acked() + WINDOW);
    while (sent < last) send(++sent);
    if (sent < n) {
      if (sent - acked() >= WINDOW) onCredit(burst);
      else setImmediate(burst);
    }
  };
  burst();
}

// Requests over a channel: send(msg) and a pending Map; the answer comes
// through onReply.
function requester(send) {
  const pending = new Map();
  let lastId = 0;
  return {
    request(msg) {
      const id = ++lastId;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => { pending.delete(id); reject(new Error('timeout')); }, TIMEOUT);
        pending.set(id, { resolve, timer });
        send({ t: 'req', id, msg });
      });
    },
    onReply(m) {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      clearTimeout(p.timer);
      p.resolve(m.v);
    },
  };
}

if (cluster.isWorker) {
  let count = 0, want = 0, credit = 0, creditWaiter = null;
  const up = requester((m) => process.send(m));
  process.on('message', async (m) => {
    const t = m.t;
    if (t === 'b') {
      count++;
      if (count % ACK === 0 || count === want) process.send({ t: 'ack', n: count });
    } else if (t === 'rep') {
      up.onReply(m);
    } else if (t === 'req') {
      process.send({ t: 'rep', id: m.id, v: m.msg });
    } else if (t === 'start') {
      count = 0; want = m.n;
    } else if (t === 'credit') {
      credit = m.n;
      if (creditWaiter) { const f = creditWaiter; creditWaiter = null; f(); }
    } else if (t === 'wbcast') {
      windowed(m.n, (i) => process.send({ t: 'wb', msg: { t: 'b', seq: i, data: MSG_DATA } }),
        () => credit, (f) => { creditWaiter = f; });
    } else if (t === 'rt') {
      const t0 = process.hrtime.bigint();
      for (let i = 1; i <= m.n; i++) await up.request(i);
      process.send({ t: 'rt_done', ms: Number(process.hrtime.bigint() - t0) / 1e6 });
    } else if (t === 'rt_conc') {
      const t0 = process.hrtime.bigint();
      const one = async () => { for (let i = 1; i <= m.n / m.conc; i++) await up.request(i); };
      await Promise.all(Array.from({ length: m.conc }, one));
      process.send({ t: 'rt_done', ms: Number(process.hrtime.bigint() - t0) / 1e6 });
    }
  });
  process.send({ t: 'ready' });
  return;
}

// The master. -------------------------------------------------------------------
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const workers = [];
const downs = [];
const results = { bcast_n: N_BCAST, rt_n: N_RT, conc: CONC };
const phases = [];
const nextPhase = () => { const p = phases.shift(); if (p) setImmediate(p); };
const broadcast = (m) => { for (const w of workers) w.send(m); };
let onMsg = () => {};
let ready = 0;

for (let i = 0; i < 2; i++) {
  const w = cluster.fork();
  workers.push(w);
  downs.push(requester((m) => w.send(m)));
  w.on('message', (m) => {
    if (m.t === 'ready') { if (++ready === 2) nextPhase(); }
    else if (m.t === 'req') w.send({ t: 'rep', id: m.id, v: m.msg });
    else if (m.t === 'rep') downs[i].onReply(m);
    else if (m.t === 'wb') broadcast(m.msg);
    else onMsg(i, m);
  });
}

function bcastPhase(key, start) {
  return () => {
    const acked = [0, 0];
    let waiter = null;
    for (const w of workers) w.send({ t: 'start', n: N_BCAST });
    const minAcked = () => Math.min(acked[0], acked[1]);
    const t0 = nowMs();
    onMsg = (i, m) => {
      if (m.t !== 'ack') return;
      acked[i] = m.n;
      const low = minAcked();
      if (low === N_BCAST) {
        results[key] = N_BCAST * 2 / (nowMs() - t0) * 1000;
        return nextPhase();
      }
      if (key === 'worker_bcast_per_s') workers[0].send({ t: 'credit', n: low });
      else if (waiter) { const f = waiter; waiter = null; f(); }
    };
    start(minAcked, (f) => { waiter = f; });
  };
}

phases.push(bcastPhase('master_bcast_per_s', (acked, onCredit) => {
  windowed(N_BCAST, (i) => broadcast({ t: 'b', seq: i, data: MSG_DATA }), acked, onCredit);
}));
phases.push(bcastPhase('worker_bcast_per_s', () => workers[0].send({ t: 'wbcast', n: N_BCAST })));

const rtPhase = (key, m) => () => {
  onMsg = (_, r) => {
    if (r.t === 'rt_done') { results[key] = N_RT / r.ms * 1000; nextPhase(); }
  };
  workers[0].send(m);
};
phases.push(rtPhase('rt_per_s', { t: 'rt', n: N_RT }));
phases.push(rtPhase('rt_conc_per_s', { t: 'rt_conc', n: N_RT, conc: CONC }));

phases.push(async () => {
  const t0 = nowMs();
  for (let i = 1; i <= N_RT; i++) await downs[0].request(i);
  results.down_rt_per_s = N_RT / (nowMs() - t0) * 1000;
  nextPhase();
});

phases.push(() => {
  const parts = Object.keys(results).sort()
    .map((k) => `"${k}":${Number(results[k].toPrecision(6))}`);
  console.log('RESULT {' + parts.join(',') + '}');
  for (const w of workers) w.process.kill('SIGKILL');
});
