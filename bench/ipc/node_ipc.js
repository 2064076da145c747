// bench/ipc/node_ipc.js - Node's side of the IPC benchmark: the same steps
// as lc_ipc.lua with Node's cluster module (default JSON serialization).
//
//   node bench/ipc/node_ipc.js [small=N] [rt=N] [big=N] [huge=N] [forks=N]
//
// (also BENCH_SMALL, BENCH_RT, BENCH_BIG, BENCH_HUGE, BENCH_FORKS). Prints
// RESULT {json}.
'use strict';
const cluster = require('cluster');
const fs = require('fs');

function param(name, dflt) {
  for (const a of process.argv.slice(2)) {
    const m = /^(\w+)=(\d+)$/.exec(a);
    if (m && m[1] === name) return Number(m[2]);
  }
  const env = process.env['BENCH_' + name.toUpperCase()];
  return env ? Number(env) : dflt;
}

const N_SMALL = param('small', 200000);
const N_RT = param('rt', 20000);
const N_BIG = param('big', 4000);
const N_HUGE = param('huge', 400);
const FORKS = param('forks', 20);
const SMALL_BATCH = 1000, BIG_BATCH = 16, HUGE_BATCH = 4;

const BIG_DATA = 'x'.repeat(65536 - 20); // the JSON object is 64 KiB

// The worker: "bench" counts and answers, "idle" does nothing. ------------------
if (cluster.isWorker) {
  if (process.env.BENCH_ROLE === 'bench') {
    let want = 0, count = 0;
    process.on('message', (m) => {
      const t = m.t;
      if (t === 'p') {
        process.send(m);
      } else if (t === 's' || t === 'b' || t === 'h') {
        count++;
        if (count === want) process.send({ t: 'done' });
      } else if (t === 'start') {
        want = m.n;
        count = 0;
      }
    });
  }
  return;
}

// The master. ----------------------------------------------------------------------
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

function median(list) {
  list.sort((a, b) => a - b);
  const n = list.length;
  return n % 2 ? list[(n - 1) / 2] : (list[n / 2 - 1] + list[n / 2]) / 2;
}

function rssKb(pid) {
  try {
    const m = /VmRSS:\s*(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch (e) {
    return null;
  }
}

const results = { small_n: N_SMALL, rt_n: N_RT, big_n: N_BIG, huge_n: N_HUGE, forks: FORKS };
const phases = [];
const nextPhase = () => { const p = phases.shift(); if (p) p(); };

// fork -> online, one at a time.
phases.push(() => {
  const lat = [];
  const one = () => {
    const t0 = nowMs();
    const w = cluster.fork({ BENCH_ROLE: 'idle' });
    w.on('online', () => {
      lat.push(nowMs() - t0);
      w.process.kill('SIGKILL');
    });
    w.on('exit', () => {
      if (lat.length < FORKS) one();
      else { results.fork_online_ms = median(lat); nextPhase(); }
    });
  };
  one();
});

// Idle worker RSS.
phases.push(() => {
  const w = cluster.fork({ BENCH_ROLE: 'idle' });
  w.on('online', () => {
    setTimeout(() => {
      results.idle_rss_kb = rssKb(w.process.pid);
      w.process.kill('SIGKILL');
    }, 500);
  });
  w.on('exit', nextPhase);
});

// Throughput, with one bench worker.
let bench, onReply;
phases.push(() => {
  bench = cluster.fork({ BENCH_ROLE: 'bench' });
  bench.on('message', (m) => onReply(m));
  bench.on('online', nextPhase);
});

// Sends n messages made by make(i), batch per loop turn; done() on "done".
function oneWay(n, batch, make, done) {
  const t0 = nowMs();
  onReply = (m) => { if (m.t === 'done') done(nowMs() - t0); };
  bench.send({ t: 'start', n });
  let sent = 0;
  const burst = () => {
    const last = Math.min(n, sent + batch);
    for (let i = sent + 1; i <= last; i++) bench.send(make(i));
    sent = last;
    if (sent < n) setImmediate(burst);
  };
  burst();
}

phases.push(() => {
  oneWay(N_SMALL, SMALL_BATCH, (i) => ({ t: 's', seq: i, data: 'abcdefghijklmnopqrst' }),
    (ms) => { results.small_per_s = N_SMALL / ms * 1000; nextPhase(); });
});

phases.push(() => {
  const t0 = nowMs();
  onReply = (m) => {
    if (m.seq < N_RT) {
      bench.send({ t: 'p', seq: m.seq + 1 });
    } else {
      results.rt_per_s = N_RT / (nowMs() - t0) * 1000;
      nextPhase();
    }
  };
  bench.send({ t: 'p', seq: 1 });
});

phases.push(() => {
  oneWay(N_BIG, BIG_BATCH, (i) => ({ t: 'b', seq: i, data: BIG_DATA }),
    (ms) => { results.big_per_s = N_BIG / ms * 1000; nextPhase(); });
});

phases.push(() => {
  // Made here: the idle worker measured above must not carry it.
  const HUGE_DATA = 'y'.repeat(1048576 - 20); // the JSON object is 1 MiB
  oneWay(N_HUGE, HUGE_BATCH, (i) => ({ t: 'h', seq: i, data: HUGE_DATA }),
    (ms) => { results.huge_per_s = N_HUGE / ms * 1000; nextPhase(); });
});

phases.push(() => {
  const parts = Object.keys(results).sort()
    .map((k) => `"${k}":${Number(results[k].toPrecision(6))}`);
  console.log('RESULT {' + parts.join(',') + '}');
  bench.process.kill('SIGKILL');
});

nextPhase();
