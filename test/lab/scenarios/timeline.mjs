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
//   - watches each guest's report (data/xenballoon/report), balloon target (memory/target) and
//     eatmem chunk (data/eatmem/chunk) in xenstore and logs every change with the time its watch
//     fired to the events CSV: the daemon's reaction is measured on these, to the millisecond,
//     not on the once-a-second status samples;
//   - runs checks when asked, alongside the sampling (this process is already running: a node
//     start costs dom0 tens of seconds when loaded): the scenario writes STATE/request =
//     "ID STEP..." (e.g. "c1 compare daemon:SOCK"); the answer is STATE/result-ID, "ok" or
//     "fail MESSAGE" on its first line, then the check's lines. Steps: those of
//     xenctrl-check.mjs, and
//       mark:NAME                    remember NAME's last report and target as the baseline
//       reaction:NAME:KIB:STEPS:MS   after the mark, the first report whose committed_as grew by
//                                    at least 90% of KIB (an eatmem chunk) must be followed by a
//                                    target that backs it (>= committed_as + the kernel's own
//                                    footprint, balloon_current - mem_total, from that report)
//                                    within STEPS of the daemon's steps (its status's count,
//                                    asked when each watch fired) and within MS; waits up to
//                                    120 s for both. Also writes STATE/reaction-NAME:
//                                    "threshold_kib reaction_ms reaction_steps chunk_to_report_ms".
//
//   node timeline.mjs --control SOCK --csv FILE --host-csv FILE --events-csv FILE --state DIR
//                     [--interval-ms 1000] [--xenstore PATH]   (default libxenstore's)
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
    'events-csv': { type: 'string' },
    state: { type: 'string' },
    'interval-ms': { type: 'string', default: '1000' },
    xenstore: { type: 'string' },
  },
});
for (const k of ['control', 'csv', 'host-csv', 'events-csv', 'state']) {
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
const eventsCsv = openSync(opt['events-csv'], 'w');
writeSync(eventsCsv, 'time_ms,domid,name,key,value_kib,seq,committed_as_kib,overhead_kib\n');
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

// --- Watched guests: every change of their report, target and eatmem chunk, timed on arrival.
const KEYS = { report: 'data/xenballoon/report', target: 'memory/target', chunk: 'data/eatmem/chunk' };
/** domid -> { name, watches, events: [{ t, key, value, seq?, committed?, overhead? }], chunk } */
const watched = new Map();

async function store() {
  xs ??= await XenStore.open(opt.xenstore ? { path: opt.xenstore } : {});
  return xs;
}

/** The v1 record's figures the checks use (docs/guest-protocol.md: `key=value` lines). */
function parseReport(text) {
  const f = {};
  for (const line of text.split('\n')) {
    const m = /^([a-z0-9_]+)=(\d{1,15})$/.exec(line.trim());
    if (m) f[m[1]] = Number(m[2]);
  }
  if (f.committed_as_kib === undefined) return null;
  const overhead =
    f.balloon_current_kib !== undefined && f.mem_total_kib !== undefined ? f.balloon_current_kib - f.mem_total_kib : null;
  return { seq: f.seq ?? null, committed: f.committed_as_kib, overhead };
}

// The daemon's step count when a tracked guest's report or target changes (after mark:NAME):
// the reaction is also counted in the daemon's own steps, which a loaded emulated machine slows
// down as a whole. Its own connection; the protocol takes one request at a time.
const tracked = new Set();
let probe = null;
let probeChain = Promise.resolve();
function stepsNow() {
  const p = probeChain.then(async () => {
    try {
      probe ??= await ControlClient.connect(opt.control);
      const { status } = await probe.request({ op: 'status' });
      return status.daemon.steps;
    } catch {
      probe?.close();
      probe = null;
      return null;
    }
  });
  probeChain = p;
  return p;
}

async function record(rec, domid, key, path, t, steps) {
  let text;
  try {
    text = await xs.readString(path);
  } catch {
    return; // not written yet, or the domain is going
  }
  let ev;
  if (key === 'report') {
    const r = parseReport(text);
    if (!r) return;
    ev = { t, key, value: r.committed, ...r, steps };
  } else {
    const x = text.trim();
    if (!/^\d{1,12}$/.test(x)) return;
    ev = { t, key, value: Number(x), steps };
    if (key === 'chunk') rec.chunk = ev.value;
  }
  rec.events.push(ev);
  writeSync(eventsCsv, [t, domid, rec.name, key, ev.value, ev.seq, ev.committed, ev.overhead].map(csvCell).join(',') + '\n');
}

async function watchDomain(domid, name) {
  const rec = { name, watches: [], events: [], chunk: null };
  watched.set(domid, rec);
  try {
    const x = await store();
    for (const [key, rel] of Object.entries(KEYS)) {
      const path = `/local/domain/${domid}/${rel}`;
      const w = await x.watch(path);
      rec.watches.push(w);
      w.on('event', () => {
        const t = Date.now();
        void record(rec, domid, key, path, t, key !== 'chunk' && tracked.has(domid) ? stepsNow() : null);
      });
    }
  } catch (err) {
    say(`cannot watch domain ${domid}: ${err.message}; trying again at the next sample`);
    for (const w of rec.watches) await w.unwatch().catch(() => undefined);
    watched.delete(domid);
  }
}

async function unwatchGone(present) {
  for (const [domid, rec] of watched) {
    if (present.has(domid)) continue;
    watched.delete(domid);
    for (const w of rec.watches) await w.unwatch().catch(() => undefined);
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
  await unwatchGone(new Set(status.domains.map((d) => d.domid)));
  for (const d of status.domains) {
    if (d.domid !== 0 && !watched.has(d.domid)) await watchDomain(d.domid, d.name);
    const rec = watched.get(d.domid);
    if (rec) rec.name = d.name;
    const chunk = rec?.chunk ?? null;
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

// --- The reaction checks (mark:NAME, reaction:NAME:KIB:BOUND_MS).
const marks = new Map();

function guest(name) {
  for (const [domid, rec] of watched) if (rec.name === name) return { domid, rec };
  throw new CheckFailure(`no guest named ${name} among the watched domains`);
}
const inOrder = (rec) => [...rec.events].sort((a, b) => a.t - b.t);
function lastAt(events, key, t) {
  let last = null;
  for (const e of events) if (e.key === key && e.t <= t) last = e;
  return last;
}

function mark(name, log) {
  const { domid, rec } = guest(name);
  tracked.add(domid);
  const t = Date.now();
  const events = inOrder(rec);
  const rep = lastAt(events, 'report', t);
  const tgt = lastAt(events, 'target', t);
  if (!rep || !tgt) throw new CheckFailure(`${name}: no report or no target seen yet, nothing to measure from`);
  marks.set(name, { t, committed: rep.committed, target: tgt.value });
  log(`mark ${name}: committed_as ${rep.committed} KiB (report seq ${rep.seq}), target ${tgt.value} KiB`);
}

/**
 * The daemon's reaction to a guest's growth: from the guest's report showing it (as xenstore
 * delivered it to a watcher in dom0, which is when the daemon can see it too) to the daemon's
 * target write that backs it. Both instants are watch events of this one process.
 */
async function reaction(name, chunkKib, boundSteps, capMs, log) {
  const m = marks.get(name);
  if (!m) throw new CheckFailure(`reaction:${name} without mark:${name} first`);
  const grown = m.committed + Math.round(0.9 * chunkKib);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const { rec } = guest(name);
    const events = inOrder(rec);
    const after = events.filter((e) => e.t >= m.t);
    const rep = after.find((e) => e.key === 'report' && e.committed >= grown);
    if (rep && rep.overhead === null) throw new CheckFailure(`${name}'s report carries no balloon_current_kib: cannot tell what backs its commitments`);
    if (rep) {
      const threshold = rep.committed + rep.overhead;
      const before = lastAt(events, 'target', rep.t);
      const hit =
        before && before.value >= threshold
          ? { t: rep.t, value: before.value, steps: rep.steps }
          : after.find((e) => e.key === 'target' && e.t >= rep.t && e.value >= threshold);
      if (hit) {
        const chunk = after.find((e) => e.key === 'chunk' && e.value >= 0.9 * chunkKib);
        const reactMs = hit.t - rep.t;
        const [s0, s1] = await Promise.all([rep.steps, hit.steps]);
        if (s0 === null || s1 === null || s0 === undefined || s1 === undefined) {
          throw new CheckFailure(`${name}: could not read the daemon's step count at its report or at the target write`);
        }
        const steps = s1 - s0;
        const chunkToReport = chunk ? rep.t - chunk.t : null;
        log(
          `${name}: report seq ${rep.seq} shows committed_as ${rep.committed} KiB (+${rep.committed - m.committed}), ` +
            `kernel footprint ${rep.overhead} KiB: needs a target >= ${threshold} KiB; the daemon wrote ${hit.value} KiB ` +
            `${reactMs} ms later, ${steps} steps later (bounds ${boundSteps} steps, ${capMs} ms); ` +
            `the chunk had appeared ${chunkToReport ?? '?'} ms before that report`,
        );
        putState(`reaction-${name}`, `${threshold} ${reactMs} ${steps} ${chunkToReport ?? -1}\n`);
        if (steps > boundSteps) {
          throw new CheckFailure(`the daemon wrote ${name}'s target ${steps} steps after the report that showed its growth: over the bound of ${boundSteps}`);
        }
        if (reactMs > capMs) {
          throw new CheckFailure(`the daemon wrote ${name}'s target ${reactMs} ms after the report that showed its growth: over the bound of ${capMs} ms`);
        }
        return;
      }
    }
    if (Date.now() > deadline) {
      const top = Math.max(m.target, ...after.filter((e) => e.key === 'target').map((e) => e.value));
      const most = Math.max(m.committed, ...after.filter((e) => e.key === 'report').map((e) => e.committed));
      throw new CheckFailure(
        rep
          ? `${name}'s target never reached ${rep.committed + rep.overhead} KiB within 120 s of its report (highest ${top} KiB)`
          : `no report from ${name} showed committed_as >= ${grown} KiB within 120 s (highest ${most} KiB)`,
      );
    }
    await sleep(250);
  }
}

/** Steps this process answers itself; the rest go to xenctrl-check.mjs. */
async function localStep(step, log) {
  const [kind, name, kib, steps, capMs] = step.split(':');
  if (kind === 'mark' && name) mark(name, log);
  else if (kind === 'reaction' && name && kib && steps && capMs) await reaction(name, Number(kib), Number(steps), Number(capMs), log);
  else return false;
  return true;
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
      const rest = [];
      for (const step of steps) if (!(await localStep(step, log))) rest.push(step);
      if (rest.length) {
        hv = await XenctrlHypervisor.open();
        log(`libxenctrl: Xen ${hv.fullVersion} (layouts ${hv.version})`);
        await runSteps(hv, rest, log);
      }
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
probe?.close();
await xs?.close().catch(() => undefined);
closeSync(csv);
closeSync(hostCsv);
closeSync(eventsCsv);
say(`stopped after ${samples} samples`);
