// Cross-checks of the libxenctrl binding (dist/xen/xenctrl.js) against Xen's own tools, run in
// the lab's dom0 by scenarios. Exit 0 = checks passed, 1 = a mismatch (printed), 2 = usage.
// Also a module: `runSteps(hv, steps)` for a process that is already running (timeline.mjs runs
// the daemon scenario's comparison, sparing dom0 a node start); a mismatch throws CheckFailure.
//
//   node xenctrl-check.mjs STEP...   (one process for many steps: node starts slowly in dom0)
//   compare             physinfo vs `xl info`, every domain's memory and flags vs `xl list`
//   balloon:NAME:MIB    our path: setMaxmem(MIB + 1 MiB) and memory/target in the safe order,
//                       then wait until the domain holds MIB
//   xl-mem-set:NAME:MIB `xl mem-set`, then wait until the domain holds MIB
//   follow:NAME:MIB     wait until the domain holds MIB (±1 MiB)
//   maxmem:NAME:KIB     the binding's max for NAME is exactly KIB
//   capped:NAME:MIB     a target above the cap is not reached (watched for 10 s)
//   pause:NAME, unpause:NAME   xl pause/unpause
//   daemon:SOCKET       xenballoond's own view (status over its control socket: host memory, each
//                       domain's memory and maxmem) equals the binding's; run after `compare`,
//                       which ties the binding to xl
import { execFile } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { XenctrlHypervisor } from '../../../dist/xen/xenctrl.js';

const run = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MIB = 1024;
// libxl keeps maxmem this far above the target (LIBXL_MAXMEM_CONSTANT, KiB); so do we here.
const MAXMEM_SLACK_KIB = 1024;

export class CheckFailure extends Error {}

/** Where the `ok …` lines go: stdout, or the caller's log (runSteps). */
let say = (line) => console.log(line);


function fail(msg) {
  throw new CheckFailure(msg);
}

async function xl(...args) {
  const { stdout } = await run('xl', args, { timeout: 60_000 });
  return stdout;
}

async function domidOf(name) {
  const out = (await xl('domid', name)).trim();
  const id = Number(out);
  if (!Number.isInteger(id)) fail(`xl domid ${name} printed ${JSON.stringify(out)}`);
  return id;
}

/** `xl info` memory lines, MiB: total_pages / 256 and (free - outstanding) / 256. */
function parseXlInfo(text) {
  const get = (k) => {
    const m = text.match(new RegExp(`^${k}\\s*:\\s*(\\d+)$`, 'm'));
    if (!m) fail(`xl info has no ${k}`);
    return Number(m[1]);
  };
  return { total: get('total_memory'), free: get('free_memory'), outstanding: get('outstanding_claims') };
}

/** `xl list` rows: Mem = (tot + outstanding) / 1024 MiB; State letters r b p s c d. */
function parseXlList(text) {
  const rows = new Map();
  for (const line of text.split('\n').slice(1)) {
    const m = line.match(/^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S{6})\s/);
    if (m) rows.set(Number(m[2]), { name: m[1], mem: Number(m[3]), state: m[5] });
  }
  return rows;
}

function expectedXlInfo(p) {
  return {
    total: Math.floor(p.totalKib / MIB),
    free: Math.floor((p.freeKib - p.outstandingKib) / MIB),
    outstanding: Math.floor(p.outstandingKib / MIB),
  };
}

function sameJson(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Compare while nothing moves: binding, then xl, then binding again; only a sample where both
 * binding reads agree is judged (guests balloon and Xen scrubs in the background).
 */
async function compare(hv) {
  for (let attempt = 1; attempt <= 10; attempt++) {
    const p1 = await hv.physinfo();
    const d1 = await hv.domains();
    // Both at once: each xl process costs seconds in a loaded dom0, and the host must stand
    // still from the first binding read to the last.
    const [infoText, listText] = await Promise.all([xl('info'), xl('list')]);
    const info = parseXlInfo(infoText);
    const list = parseXlList(listText);
    const p2 = await hv.physinfo();
    const d2 = await hv.domains();
    if (!sameJson(p1, p2) || !sameJson(d1, d2)) {
      await sleep(500);
      continue;
    }
    const want = expectedXlInfo(p1);
    if (!sameJson(want, info)) fail(`physinfo ${JSON.stringify(p1)} -> ${JSON.stringify(want)} MiB, xl info says ${JSON.stringify(info)}`);
    const ids = d1.map((d) => d.domid);
    if (!sameJson(ids, [...list.keys()].sort((a, b) => a - b))) {
      fail(`binding lists domids ${ids}, xl list ${[...list.keys()]}`);
    }
    for (const d of d1) {
      const row = list.get(d.domid);
      const mem = Math.floor((d.totKib + d.outstandingKib) / MIB);
      if (row.mem !== mem) fail(`${row.name} (domid ${d.domid}): binding ${d.totKib} KiB -> ${mem} MiB, xl list ${row.mem} MiB`);
      const flags = { paused: row.state[2] === 'p', shutdown: row.state[3] === 's', dying: row.state[5] === 'd' };
      for (const [k, v] of Object.entries(flags)) {
        if (d[k] !== v) fail(`${row.name} (domid ${d.domid}): binding ${k}=${d[k]}, xl list state ${row.state}`);
      }
      if (d.hvm) fail(`${row.name}: binding says HVM, the lab runs PV domains only`);
      say(
        `ok ${row.name} domid ${d.domid}: tot ${d.totKib} KiB (xl ${row.mem} MiB), max ${d.maxKib} KiB, state ${row.state}`,
      );
    }
    say(
      `ok physinfo: total ${p1.totalKib} free ${p1.freeKib} scrub ${p1.scrubKib} outstanding ${p1.outstandingKib} KiB = xl info ${JSON.stringify(info)} MiB (attempt ${attempt})`,
    );
    return;
  }
  fail('the host never stood still for a comparison in 10 attempts');
}

async function follow(hv, name, mib, limitS = 120) {
  const id = await domidOf(name);
  const want = mib * MIB;
  const t0 = Date.now();
  let d;
  while (Date.now() - t0 < limitS * 1000) {
    d = (await hv.domains()).find((x) => x.domid === id);
    if (!d) fail(`${name} (domid ${id}) vanished`);
    if (Math.abs(d.totKib - want) <= MIB) {
      say(`ok ${name} holds ${d.totKib} KiB (target ${want}) after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return (Date.now() - t0) / 1000;
    }
    await sleep(250);
  }
  fail(`${name} holds ${d?.totKib} KiB, not ${want} KiB ±1 MiB, after ${limitS} s`);
}

async function timing(name, seconds) {
  await appendFile(`${process.env.LAB_RESULTS ?? '.'}/scenario-timings.txt`, `${name} ${seconds.toFixed(1)}\n`);
}

/** libxl's way: memory/target, then maxmem = target + 1 MiB; timed from the command's start. */
async function xlMemSet(hv, name, mib) {
  const t0 = Date.now();
  await xl('mem-set', name, String(mib));
  await follow(hv, name, mib);
  await timing(`xl_mem_set_${name}_${mib}`, (Date.now() - t0) / 1000);
}

async function maxmem(hv, name, kib) {
  const id = await domidOf(name);
  const d = (await hv.domains()).find((x) => x.domid === id);
  if (!d) fail(`${name} (domid ${id}) not in the binding's list`);
  if (d.maxKib !== kib) fail(`${name}: binding max ${d.maxKib} KiB, expected ${kib} KiB`);
  say(`ok ${name} max ${d.maxKib} KiB`);
}

/** The order a balloon controller must use: raise the cap before growing, lower it after shrinking. */
async function balloon(hv, name, mib) {
  const id = await domidOf(name);
  const target = mib * MIB;
  const cap = target + MAXMEM_SLACK_KIB;
  const before = (await hv.domains()).find((x) => x.domid === id);
  const growing = target > before.totKib;
  if (growing) await hv.setMaxmem(id, cap);
  const t0 = Date.now();
  await run('xenstore-write', [`/local/domain/${id}/memory/target`, String(target)], { timeout: 30_000 });
  await follow(hv, name, mib);
  await timing(`balloon_${name}_${mib}`, (Date.now() - t0) / 1000);
  if (!growing) await hv.setMaxmem(id, cap);
  await maxmem(hv, name, cap);
}

/**
 * maxmem is the hard cap: a target above it is not reached. Write the target without raising
 * the cap, watch for `seconds`, then put the old target back.
 */
async function capped(hv, name, mib, seconds = 10) {
  const id = await domidOf(name);
  const d0 = (await hv.domains()).find((x) => x.domid === id);
  const path = `/local/domain/${id}/memory/target`;
  const { stdout: oldTarget } = await run('xenstore-read', [path], { timeout: 30_000 });
  await run('xenstore-write', [path, String(mib * MIB)], { timeout: 30_000 });
  let most = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    const d = (await hv.domains()).find((x) => x.domid === id);
    most = Math.max(most, d.totKib);
    if (d.totKib > d0.maxKib) fail(`${name} holds ${d.totKib} KiB, above its cap ${d0.maxKib} KiB`);
    await sleep(250);
  }
  await run('xenstore-write', [path, oldTarget.trim()], { timeout: 30_000 });
  say(`ok ${name}: target ${mib * MIB} KiB above the cap ${d0.maxKib} KiB; held at most ${most} KiB for ${seconds} s`);
}

/**
 * xenballoond's view equals the binding's, judged on a sample where nothing moved: binding, wait
 * past one control interval, the daemon's status, binding again; it counts only when both
 * binding reads agree and the daemon's last step started after the first one.
 */
async function daemonView(hv, socket) {
  const { ControlClient } = await import('../../../dist/daemon/control-client.js');
  const client = await ControlClient.connect(socket);
  try {
    for (let attempt = 1; attempt <= 15; attempt++) {
      const tA = Date.now();
      const p1 = await hv.physinfo();
      const d1 = await hv.domains();
      const { status: st0 } = await client.request({ op: 'status' });
      await sleep(Math.max(1500, st0.daemon.interval_ms * 1.5));
      const { status: st } = await client.request({ op: 'status' });
      const p2 = await hv.physinfo();
      const d2 = await hv.domains();
      const stepStart = (st.daemon.last_step_at_ms ?? 0) - (st.daemon.last_step_duration_ms ?? 0);
      if (!sameJson(p1, p2) || !sameJson(d1, d2) || stepStart < tA) continue;
      const host = { total: st.host.total_kib, free: st.host.free_kib, scrub: st.host.scrub_kib, outstanding: st.host.outstanding_kib };
      const want = { total: p1.totalKib, free: p1.freeKib, scrub: p1.scrubKib, outstanding: p1.outstandingKib };
      if (!sameJson(host, want)) fail(`xenballoond's host ${JSON.stringify(host)} KiB, the binding's ${JSON.stringify(want)} KiB`);
      const ids = st.domains.map((d) => d.domid);
      if (!sameJson(ids, d1.map((d) => d.domid))) fail(`xenballoond lists domids ${ids}, the binding ${d1.map((d) => d.domid)}`);
      for (const d of st.domains) {
        const b = d1.find((x) => x.domid === d.domid);
        if (d.current_kib !== b.totKib || d.maxmem_kib !== b.maxKib) {
          fail(`${d.name} (domid ${d.domid}): xenballoond current ${d.current_kib} maxmem ${d.maxmem_kib} KiB, the binding tot ${b.totKib} max ${b.maxKib} KiB`);
        }
      }
      say(`ok xenballoond's view equals the binding's: host total ${want.total} free ${want.free} KiB, ${ids.length} domains (attempt ${attempt})`);
      return;
    }
    fail("the host never stood still for comparing xenballoond's view in 15 attempts");
  } finally {
    client.close();
  }
}

const usage =
  'usage: xenctrl-check.mjs STEP... with STEP one of compare, follow:NAME:MIB, maxmem:NAME:KIB,\n' +
  '  balloon:NAME:MIB, xl-mem-set:NAME:MIB, capped:NAME:MIB, pause:NAME, unpause:NAME, daemon:SOCKET';

/**
 * Runs steps ("compare", "follow:g1:100", …) in order; throws CheckFailure at the first
 * mismatch. `log` receives the `ok …` lines.
 */
export async function runSteps(hv, steps, log = (line) => console.log(line)) {
  say = log;
  for (const [step, a, b] of steps.map((x) => x.split(':'))) {
    if (step === 'compare') await compare(hv);
    else if (step === 'follow' && b) await follow(hv, a, Number(b));
    else if (step === 'maxmem' && b) await maxmem(hv, a, Number(b));
    else if (step === 'balloon' && b) await balloon(hv, a, Number(b));
    else if (step === 'xl-mem-set' && b) await xlMemSet(hv, a, Number(b));
    else if (step === 'capped' && b) await capped(hv, a, Number(b));
    else if ((step === 'pause' || step === 'unpause') && a) await xl(step, a);
    else if (step === 'daemon' && a) await daemonView(hv, a);
    else throw new Error(`unknown step ${[step, a, b].filter(Boolean).join(':')}\n${usage}`);
  }
}

async function main(steps) {
  if (steps.length === 0) {
    console.error(usage);
    return 2;
  }
  let hv;
  try {
    hv = await XenctrlHypervisor.open();
  } catch (err) {
    console.error(`FAIL: ${err.message}`);
    return 1;
  }
  try {
    say(`libxenctrl: Xen ${hv.fullVersion} (layouts ${hv.version})`);
    await runSteps(hv, steps);
    return 0;
  } catch (err) {
    if (!(err instanceof CheckFailure)) throw err;
    console.error(`FAIL: ${err.message}`);
    return 1;
  } finally {
    await hv.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
