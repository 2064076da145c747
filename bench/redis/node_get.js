// bench/redis: GETs through ioredis (Node 20), one process, one client:
// CONC async loops each awaiting redis.get. AUTOPIPE=1 turns on ioredis's
// enableAutoPipelining (commands of one event-loop tick in one write).
//   REDIS_PORT=6379 N=100000 CONC=64 node bench/redis/node_get.js
// WARMUP GETs go first; prints "RESULT <GET/s>".
'use strict';
const path = require('node:path');
const Redis = require(path.join(__dirname, '..', '.peers', 'node_modules', 'ioredis'));

const n = Number(process.env.N) || 100000;
const conc = Number(process.env.CONC) || 1;
const warmup = Number(process.env.WARMUP) || Math.floor(n / 10);
const redis = new Redis({ port: Number(process.env.REDIS_PORT) || 6379,
                          enableAutoPipelining: process.env.AUTOPIPE === '1' });

async function run(count) {
  let left = count;
  const t0 = process.hrtime.bigint();
  async function loop() {
    while (left > 0) {
      left--;
      const v = await redis.get('bench:key');
      if (v === null) throw new Error('GET: nil');
    }
  }
  const loops = [];
  for (let i = 0; i < conc; i++) loops.push(loop());
  await Promise.all(loops);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

(async () => {
  await redis.set('bench:key', 'value-0123456789');
  await run(warmup);
  const seconds = await run(n);
  console.log(`RESULT ${Math.round(n / seconds)}`);
  redis.disconnect();
})();
