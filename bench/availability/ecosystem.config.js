// PM2 running node_app.js in cluster mode with 2 instances (WORKERS), as
// bench/availability/run starts it:
//   PORT=8080 DELAY_MS=5 PM2_HOME=/tmp/x/pm2 bench/.peers/node_modules/.bin/pm2 start bench/availability/ecosystem.config.js
// PM2's defaults are kept (kill_timeout 1600 ms, SIGINT to stop a worker,
// listen_timeout 3000 ms, immediate restarts, max_restarts 16 unstable ones).
'use strict';
const path = require('node:path');

const env = { PORT: process.env.PORT || '8080', DELAY_MS: process.env.DELAY_MS || '5' };
if (process.env.CRASH_INSTANCE) env.CRASH_INSTANCE = process.env.CRASH_INSTANCE;

module.exports = {
  apps: [{
    name: process.env.PM2_APP_NAME || 'avail',
    script: path.join(__dirname, 'node_app.js'),
    exec_mode: 'cluster',
    instances: Number(process.env.WORKERS) || 2,
    env,
  }],
};
