// The lab's timeline sampler: one long-lived process in dom0 (node takes seconds to start under
// emulation, so never one process per sample). About once a second it asks xenballoond for its
// status over the control socket and reads each guest's eatmem chunk from xenstore, then
//   - appends one row per domain to the timeline CSV and one row to the host CSV (the chart and
//     docs/lab.md read these), and
//   - rewrites small state files (atomically) that the bash scenario polls for its checks:
//       STATE/domains  one line per domain:
//                      name domid managed current_kib target_kib need_kib maxmem_kib chunk_kib report_age_ms flags
//                      (a missing value is '-'; flags comma-separated or '-')
//       STATE/daemon   "up pid steps step_failures stalled time_ms", or "down REASON" when the
//                      daemon does not answer
//       STATE/status.json  the whole last status (what `xenballoonctl status --json` prints)
//   - runs the binding checks of xenctrl-check.mjs when asked, alongside the sampling (this
//     process is already running: a node start costs dom0 tens of seconds when loaded): the
//     scenario writes STATE/request = "ID STEP..." (e.g. "c1 compare daemon:SOCK"); the answer
//     is STATE/result-ID, "ok" or "fail MESSAGE" on its first line, then the check's lines.
//
//   node timeline.mjs --control SOCK --csv FILE --host-csv FILE --state DIR [--interval-ms 1000]
//                     [--xenstore PATH]   (default libxenstore's; a simulated host's socket for trying it)
//
// SIGTERM ends it (exit 0). It never exits on its own while the daemon is down: that is a state
// for the scenario to judge.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ControlClient } from '../../../dist/daemon/control-client.js';
import { XenStore } from '../../../dist/xen/xenstore.js';
import { XenctrlHypervisor } from '../../../dist/xen/xenctrl.js';
import { CheckFailure, runSteps } from './xenctrl-check.mjs';

const { values: opt } = parseArgs({
  options: {
    control: { type: 'string' },
    csv: { type: 'string' },
    'host-csv': { type: 'string' },
    state: { type: 'string' },
    'interval-ms': { type: 'string', default: '1000' },
    xenstore: { type: 'string' },
  },
});
for (const k of ['control', 'csv', 'host-csv', 'state']) {
  if (!opt[k]) {
    console.error(`timeline: --${k} is required`);
    process.exit(2);
  }
}
const intervalMs = Number(opt['interval-ms']);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (msg) => console.log(`${new Date().toISOString()} timeline: ${msg}`);

mkdirSync(opt.state, { recursive: true });
const csv = openSync(opt.csv, 'w');
const hostCsv = openSync(opt['host-csv'], 'w');
writeSync(csv, 't_s,time_ms,domid,name,managed,current_kib,target_kib,need_kib,maxmem_kib,min_kib,chunk_kib,report_age_ms,flags\n');
writeSync(hostCsv, 't_s,time_ms,total_kib,free_kib,scrub_kib,reserved_kib,domains,steps,step_failures,stalled,step_ms\n');

function putState(name, text) {
  const tmp = join(opt.state, `.${name}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, join(opt.state, name));
}

let stopping = false;
process.on('SIGTERM', () => (stopping = true));
process.on('SIGINT', () => (stopping = true));

const v = (x) => (x === null || x === undefined ? '-' : String(x));
const csvCell = (x) => (x === null || x === undefined ? '' : /[",\n]/.test(String(x)) ? `"${String(x).replace(/"/g, '""')}"` : String(x));

let client = null;
let xs = null;
let t0 = null;
let lastDown = null;
let samples = 0;

async function chunkOf(domid) {
  try {
    if (!xs) xs = await XenStore.open(opt.xenstore ? { path: opt.xenstore } : {});
    const s = (await xs.readString(`/local/domain/${domid}/data/eatmem/chunk`)).trim();
    return /^\d{1,12}$/.test(s) ? Number(s) : null;
  } catch (err) {
    if (err?.code !== 'ENOENT' && err?.code !== 'EACCES') {
      say(`xenstore: ${err.message}; reconnecting`);
      await xs?.close().catch(() => undefined);
      xs = null;
    }
    return null;
  }
}

async function sampleOnce() {
  if (!client) client = await ControlClient.connect(opt.control);
  const { status } = await client.request({ op: 'status' });
  const now = status.time_ms;
  t0 ??= now;
  const t = ((now - t0) / 1000).toFixed(1);
  const lines = [];
  let rows = '';
  for (const d of status.domains) {
    const chunk = d.domid === 0 ? null : await chunkOf(d.domid);
    const flags = d.flags.length ? d.flags.join(',') : '-';
    lines.push([d.name, d.domid, d.managed ? 1 : 0, d.current_kib, d.target_kib, d.need_kib, d.maxmem_kib, chunk, d.report_age_ms, flags].map(v).join(' '));
    rows += [t, now, d.domid, d.name, d.managed ? 1 : 0, d.current_kib, d.target_kib, d.need_kib, d.maxmem_kib, d.min_kib, chunk, d.report_age_ms, d.flags.join(' ')]
      .map(csvCell).join(',') + '\n';
  }
  const h = status.host;
  const dm = status.daemon;
  writeSync(csv, rows);
  writeSync(hostCsv, [t, now, h.total_kib, h.free_kib, h.scrub_kib, h.reserved_kib, status.domains.length, dm.steps, dm.step_failures, dm.stalled ? 1 : 0, dm.last_step_duration_ms ?? ''].join(',') + '\n');
  putState('domains', lines.join('\n') + '\n');
  putState('status.json', JSON.stringify(status, null, 2) + '\n');
  putState('daemon', `up ${dm.pid} ${dm.steps} ${dm.step_failures} ${dm.stalled ? 1 : 0} ${now}\n`);
  if (lastDown !== null) say('the daemon answers again');
  lastDown = null;
  if (++samples === 1) say(`first sample: ${status.domains.length} domains`);
}

const handled = new Set();
let checking = null;

/** Starts a requested check (one at a time); it runs while sampling goes on. */
function takeRequest() {
  const path = join(opt.state, 'request');
  if (checking || !existsSync(path)) return;
  const [id, ...steps] = readFileSync(path, 'utf8').trim().split(/\s+/);
  if (!id || handled.has(id)) return;
  handled.add(id);
  say(`check ${id}: ${steps.join(' ')}`);
  const lines = [];
  const log = (line) => {
    lines.push(line);
    say(`check ${id}: ${line}`);
  };
  checking = (async () => {
    let verdict = 'ok';
    let hv = null;
    try {
      hv = await XenctrlHypervisor.open();
      log(`libxenctrl: Xen ${hv.fullVersion} (layouts ${hv.version})`);
      await runSteps(hv, steps, log);
    } catch (err) {
      verdict = `fail ${err instanceof CheckFailure ? '' : 'error: '}${String(err.message ?? err).replace(/\s+/g, ' ')}`;
      say(`check ${id}: ${verdict}`);
    } finally {
      await hv?.close().catch(() => undefined);
    }
    putState(`result-${id}`, [verdict, ...lines].join('\n') + '\n');
  })().finally(() => (checking = null));
}

say(`sampling ${opt.control} every ${intervalMs} ms`);
while (!stopping) {
  const started = Date.now();
  takeRequest();
  try {
    await sampleOnce();
  } catch (err) {
    client?.close();
    client = null;
    const reason = String(err.message ?? err).replace(/\s+/g, ' ');
    putState('daemon', `down ${reason}\n`);
    if (reason !== lastDown) say(`no status: ${reason}`);
    lastDown = reason;
  }
  await sleep(Math.max(100, intervalMs - (Date.now() - started)));
}
await checking;
client?.close();
await xs?.close().catch(() => undefined);
closeSync(csv);
closeSync(hostCsv);
say(`stopped after ${samples} samples`);
