/**
 * The real xenballoond process against a simulated Xen host (`xenballoonctl sim-host`): what an
 * operator relies on, end to end. Time is asserted in daemon steps (its interval is 500 ms in the
 * test policy), never in wall-clock thresholds; every wait is a condition with a generous timeout.
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { duplicateKeys } from '../helpers/json.js';
import { hasLibsystemd, NotifySocket } from '../helpers/notify-socket.js';
import { ctlPath, daemonPath, MAX_SHRINK_PER_STEP_KIB, MiB, Rig, runCtl, settled, waitFor, type Daemon } from './harness.js';

describe('xenballoond on a simulated host', () => {
  const rig = new Rig();
  let d: Daemon;
  let steady1 = 0;

  beforeAll(async () => {
    await rig.start();
    d = await rig.startDaemon(['--metrics', '127.0.0.1:0']);
  });
  afterAll(() => rig.cleanup());

  it('manages a new domain within one interval', async () => {
    const before = (await d.status()).daemon.steps;
    steady1 = await rig.create('steady-1', 'steady');
    const dom = await waitFor('steady-1 managed', async () => {
      const st = await d.status();
      const x = st.domains.find((y) => y.domid === steady1);
      return x?.managed ? { x, steps: st.daemon.steps } : undefined;
    });
    // @introduceDomain asks for a step at once; at most one regular step may have run besides.
    expect(dom.steps - before).toBeLessThanOrEqual(2);
    expect(dom.x.name).toBe('steady-1');
  });

  it('gives a guest whose report shows more need more memory within two intervals', async () => {
    const start = await settled(d, 'steady-1');
    const targets = await rig.recordTargets(steady1);
    const report = await (rig.xs!).watch(`/local/domain/${steady1}/data/xenballoon/report`, 'it-report');
    let seenAtStep: number | null = null;
    report.on('event', () => {
      void rig.xs!.readString(`/local/domain/${steady1}/data/xenballoon/report`).then(async (v) => {
        const committed = Number(/^committed_as_kib=(\d+)$/m.exec(v)?.[1] ?? 0);
        if (seenAtStep === null && committed >= 600 * MiB) seenAtStep = (await d.status()).daemon.steps;
      }, () => undefined);
    });
    await rig.setNeed(steady1, 600 * MiB);
    const grown = await waitFor('target raised', async () => {
      const st = await d.status();
      const x = st.domains.find((y) => y.domid === steady1);
      return x && (x.target_kib ?? 0) > (start.target_kib ?? 0) + 200 * MiB ? st.daemon.steps : undefined;
    });
    await report.unwatch();
    await targets.stop();
    expect(seenAtStep).not.toBeNull();
    expect(grown - (seenAtStep as unknown as number)).toBeLessThanOrEqual(2);
    expect(targets.values.length).toBeGreaterThan(0);
  });

  it('takes memory back from a guest that needs less, no faster than rate.down', async () => {
    await settled(d, 'steady-1');
    const already = d.targetWrites(steady1).length;
    const writes = () => d.targetWrites(steady1).slice(already);
    await rig.setNeed(steady1, 100 * MiB);
    // Shrinking from near 1 GiB at 16M/s takes long; six rate-limited writes tell enough.
    await waitFor('six lower targets', () => writes().filter((w) => w.from !== null && w.to < w.from).length >= 6);
    const low = await d.domain('steady-1');
    expect(low?.flags).not.toContain('stuck');
    for (const w of writes()) expect((w.from as number) - w.to).toBeLessThanOrEqual(MAX_SHRINK_PER_STEP_KIB);
  });

  it('shows its view through status --json, top and explain', async () => {
    const js = await runCtl(['--control', rig.control, 'status', '--json']);
    expect(js.code).toBe(0);
    const st = JSON.parse(js.stdout) as { host: Record<string, number>; domains: Record<string, unknown>[] };
    expect(st.host).toMatchObject({ total_kib: 2048 * MiB });
    expect(st.domains.find((x) => x.name === 'steady-1')).toMatchObject({
      domid: steady1, current_kib: expect.any(Number), target_kib: expect.any(Number), need_kib: expect.any(Number), managed: true,
    });
    const top = await runCtl(['--control', rig.control, 'top', '-n', '2', '-d', '0.2', '-s', 'current']);
    expect(top.code).toBe(0);
    const size = '\\d+(\\.\\d+)?[KMG]';
    expect(top.stdout.match(new RegExp(`^host: total 2G {2}free ${size} .*reserved (0|${size})`, 'gm'))).toHaveLength(2);
    expect(top.stdout).toMatch(/^NAME +ID +CURRENT↓ +TARGET +NEED +MIN +MAX +WEIGHT +SWAPIN +PSI +FLAGS$/m);
    expect(top.stdout).toMatch(new RegExp(`^steady-1 +\\d+ +${size} +${size} +${size} +${size} +1G +100 `, 'm'));
    const ex = await runCtl(['--control', rig.control, 'explain', 'steady-1']);
    expect(ex.code).toBe(0);
    expect(ex.stdout).toMatch(/^steady-1 \(domain \d+\): current \d+(\.\d+)?M, target \d+(\.\d+)?M, need \d+(\.\d+)?M/);
    expect(ex.stdout).toMatch(/need: \d+(\.\d+)?M \(committed_as/);
    const missing = await runCtl(['--control', rig.control, 'explain', 'no-such-domain']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no domain named or numbered 'no-such-domain'/);
  });

  it('writes a snapshot of the live host that plan reads, and answers capacity from it', async () => {
    const snap = await runCtl(['--control', rig.control, 'snapshot', '--policy-out', join(rig.dir, 'daemon-policy.yaml')]);
    expect(snap.code).toBe(0);
    const file = join(rig.dir, 'host.json');
    await writeFile(file, snap.stdout);
    const s = JSON.parse(snap.stdout) as { host: { total_kib: number }; domains: { name: string; report?: unknown }[] };
    expect(s.host.total_kib).toBe(2048 * MiB);
    expect(s.domains.find((x) => x.name === 'steady-1')?.report).toBeDefined();
    const check = await runCtl(['policy', 'check', join(rig.dir, 'daemon-policy.yaml')]);
    expect(check.code).toBe(0);
    const plan = await runCtl(['plan', file, '--policy', join(rig.dir, 'daemon-policy.yaml'), '--json']);
    expect(plan.stderr).toBe('');
    expect(plan.code).toBe(0);
    expect((JSON.parse(plan.stdout) as { domains: { name: string; managed: boolean }[] }).domains.find((x) => x.name === 'steady-1')?.managed).toBe(true);
    const fromFile = await runCtl(['capacity', '--snapshot', file, '--policy', join(rig.dir, 'daemon-policy.yaml'), '--json']);
    expect(fromFile.code).toBe(0);
    expect(JSON.parse(fromFile.stdout)).toMatchObject({ free_now_kib: expect.any(Number), largest_kib: expect.any(Number) });
    const live = await runCtl(['--control', rig.control, 'capacity', '256M']);
    expect(live.code).toBe(0);
    expect(live.stdout).toMatch(/^free now: +\S+\nafter shrinking: +\S+, .*\nat the floors: +\S+ .*\na 256M domain /);
  });

  it('serves Prometheus metrics on the --metrics address', async () => {
    const line = d.logs().find((l) => /xenballoond started/.test(l.msg));
    const addr = line?.metrics as string;
    expect(addr).toMatch(/^127\.0\.0\.1:\d+$/);
    const body = await (await fetch(`http://${addr}/metrics`)).text();
    expect(body).toMatch(/^xenballoond_host_memory_bytes 2147483648$/m);
    expect(body).toMatch(new RegExp(`^xenballoond_domain_target_bytes\\{domid="${steady1}",name="steady-1"\\} \\d+$`, 'm'));
    expect(body).toMatch(/^xenballoond_build_info\{version="[^"]+",node="v\d+[^"]*"\} 1$/m);
    expect(body).toMatch(/^xenballoond_action_failures_total\{kind="setMaxmem"\} 0$/m);
    expect(body).toMatch(/^xenballoond_log_lines_dropped_total 0$/m);
    // Base units only, `_total` only on counters, process metrics under their standard names.
    const names = [...body.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => ({ name: m[1] as string, type: m[2] as string }));
    expect(names.filter((n) => /_kib$/.test(n.name))).toEqual([]);
    expect(names.filter((n) => n.type !== 'counter' && /_total$/.test(n.name))).toEqual([]);
    expect(names.some((n) => n.name.startsWith('xenballoond_process_'))).toBe(false);
    expect(body).toMatch(/^xenballoond_steps_total \d+$/m);
    expect(body).toMatch(/^xenballoond_actions_total\{kind="setTarget"\} \d+$/m);
    expect(body).toMatch(/^xenballoond_step_duration_seconds_count \d+$/m);
    expect(body).toMatch(/^process_resident_memory_bytes \d+/m);
  });

  it('logs JSON lines in which no key appears twice', () => {
    const lines = d.proc.out().split('\n').filter((l) => l.startsWith('{'));
    expect(lines.some((l) => l.includes("xenballoond started"))).toBe(true);
    for (const line of lines) expect(duplicateKeys(line), line).toEqual([]);
  });

  it('refuses to start without xenstored, in one line', async () => {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [daemonPath, '--xenstore', join(rig.dir, 'no-xenstored.sock'), '--hypervisor',
        `sim:${join(rig.dir, 'hypervisor.sock')}`, '--control', join(rig.dir, 'other.sock'), '--state', join(rig.dir, 'other-state'), '--policy', rig.policy], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr.on('data', (b: Buffer) => (err += b.toString()));
      c.on('exit', (code) => resolve({ code, stderr: err }));
    });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^xenballoond: cannot connect to xenstored at .*no-xenstored\.sock \(\w+\): is xenstored running\?/);
  });

  it('grants a reservation by ballooning others down, and fails one that cannot be met with the reason', async () => {
    const free = (await d.status()).host.free_kib;
    // More than is free now: steady-1 must give memory back first.
    const want = Math.round((free + 96 * MiB) / MiB);
    const ok = await runCtl(['--control', rig.control, 'reserve', `${want}M`, '--timeout', '2m']);
    expect(ok.stderr).toMatch(/reserved/);
    expect(ok.code).toBe(0);
    const id = ok.stdout.trim();
    expect(id).toMatch(/^r\d+$/);
    const held = await d.status();
    expect(held.reservations).toEqual([expect.objectContaining({ id, state: 'held', kib: want * MiB })]);
    expect(held.host.free_kib).toBeGreaterThanOrEqual(want * MiB);
    expect(await runCtl(['--control', rig.control, 'release', id])).toMatchObject({ code: 0 });
    expect((await d.status()).reservations).toEqual([]);

    const bad = await runCtl(['--control', rig.control, 'reserve', '3G']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/minimums of running domains leave only .*; 3G requested/);
  });

  it('launches a domain through a reservation and releases it once the domain holds its memory', async () => {
    const r = await runCtl(['--control', rig.control, 'launch', '--reserve', '512M', '--timeout', '2m', '--',
      process.execPath, ctlPath, 'sim-create', '--dir', rig.dir, '--name', 'launched-1', '--memory', '512M', '--maxmem', '1G']);
    expect(r.stderr).toMatch(/domain \d+ holds its memory; reservation r\d+ released/);
    expect(r.code).toBe(0);
    const st = await d.status();
    expect(st.reservations).toEqual([]);
    expect(st.domains.find((x) => x.name === 'launched-1')).toBeDefined();
  });

  it('keeps the old policy when SIGHUP brings a broken one, and takes a fixed one', async () => {
    const good = await readFile(rig.policy, 'utf8');
    await writeFile(rig.policy, good + '\nbogus_key: 1\n');
    process.kill(d.pid, 'SIGHUP');
    const line = await waitFor('reload refused in the log', () => d.logs().find((l) => /policy reload failed/.test(l.msg)));
    expect(line.msg).toMatch(new RegExp(`keeping the previous policy: bad policy: ${rig.policy.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `));
    expect(d.proc.running()).toBe(true);
    const before = (await d.status()).daemon.steps;
    await waitFor('steps go on', async () => (await d.status()).daemon.steps > before + 2);
    expect((await d.status()).daemon.interval_ms).toBe(500);
    const viaCtl = await runCtl(['--control', rig.control, 'reload']);
    expect(viaCtl.code).toBe(1);
    expect(viaCtl.stderr).toMatch(/:\d+:\d+: unknown key 'bogus_key'/);

    await writeFile(rig.policy, good.replace('interval: 500ms', 'interval: 400ms'));
    const fixed = await runCtl(['--control', rig.control, 'reload']);
    expect(fixed).toMatchObject({ code: 0 });
    expect((await d.status()).daemon.interval_ms).toBe(400);
  });
});

describe('a stuck guest', () => {
  const rig = new Rig();
  let d: Daemon;
  beforeAll(async () => {
    await rig.start();
    d = await rig.startDaemon();
  });
  afterAll(() => rig.cleanup());

  it('is flagged, its memory counts as fixed, and the others cover its share', async () => {
    const a = await rig.create('grow-1', 'steady');
    const s = await rig.create('stuck-1', 'stuck');
    const b = await rig.create('steady-2', 'steady');
    await settled(d, 'steady-2', 2);
    const bBefore = await rig.target(b);
    await rig.setNeed(a, 900 * MiB);
    const stuck = await waitFor('stuck-1 flagged', async () => {
      const x = await d.domain('stuck-1');
      return x?.flags.includes('stuck') ? x : undefined;
    });
    expect(d.logs().some((l) => /^stuck-1 \(domain \d+\) is stuck$/.test(l.msg))).toBe(true);
    // It never moved: it still holds what it started with, and its target is left for it.
    expect(stuck.current_kib).toBeGreaterThanOrEqual(500 * MiB);
    const ex = await runCtl(['--control', rig.control, 'explain', 'stuck-1']);
    expect(ex.stdout).toMatch(/stuck/);
    // The others cover: steady-2 gives memory back and grow-1 gets more.
    await waitFor('steady-2 shrinks', async () => (await rig.target(b)) < bBefore);
    await waitFor('grow-1 grows', async () => (await rig.target(a)) > 600 * MiB);
    expect(s).toBeGreaterThan(0);
  });
});

describe('kill -9 and restart', () => {
  const rig = new Rig();
  beforeAll(() => rig.start());
  afterAll(() => rig.cleanup());

  it('changes no target by more than the rate limit', async () => {
    const d1 = await rig.startDaemon();
    const doms = [
      await rig.create('a-1', 'steady', 320 * MiB),
      await rig.create('b-1', 'steady', 320 * MiB),
      await rig.create('c-1', 'steady', 320 * MiB),
    ];
    await rig.setNeed(doms[1] as number, 150 * MiB);
    for (const n of ['b-1', 'c-1']) await settled(d1, n, 6);
    // a-1 comes under pressure (600M of anon in 320M): the daemon raises its need and grows it.
    await rig.setNeed(doms[0] as number, 600 * MiB);
    await waitFor('a-1 grown under pressure', async () => (await rig.target(doms[0] as number)) > 700 * MiB);
    // ... and holding it (the core takes a guest's memory away at rate.down from what it holds,
    // and a target it has not reached yet costs it nothing).
    await waitFor('a-1 holds its target', async () => {
      const t = await rig.target(doms[0] as number);
      const held = (await rig.hv!.domains()).find((x) => x.domid === doms[0])?.totKib ?? 0;
      return held >= t - 4 * MiB;
    });
    // Its workload shrinks again, and the daemon dies before acting on it: the next one starts
    // without the old one's memory of a-1's pressure, sees a much smaller need, and must still
    // shrink a-1 no faster than rate.down.
    await rig.setNeed(doms[0] as number, 150 * MiB);
    await d1.kill9();
    // What the dead daemon left.
    const before = new Map<number, number>();
    for (const id of doms) before.set(id, await rig.target(id));
    const d2 = await rig.startDaemon();
    await waitFor('a-1 shrinking under the new daemon', () => d2.targetWrites(doms[0] as number).some((w) => w.to < (before.get(doms[0] as number) as number)));
    const start = (await d2.status()).daemon.steps;
    await waitFor('a few more steps', async () => (await d2.status()).daemon.steps >= start + 4);
    // Every target the new daemon wrote is at most one step's rate limit below the one before,
    // starting from what the dead daemon left (growth is never rate-limited: a guest under
    // pressure may get memory at once).
    for (const id of doms) {
      const ws = d2.targetWrites(id);
      if (ws.length) expect(ws[0]?.from).toBe(before.get(id));
      for (const w of ws) expect((w.from as number) - w.to).toBeLessThanOrEqual(MAX_SHRINK_PER_STEP_KIB);
    }
    const st = await d2.status();
    for (const id of doms) expect(st.domains.find((x) => x.domid === id)?.managed).toBe(true);
  });
});

describe('under systemd (Type=notify, WatchdogSec)', () => {
  const rig = new Rig();
  beforeAll(() => rig.start());
  afterAll(() => rig.cleanup());

  it.skipIf(!hasLibsystemd)('says READY once started, pings the watchdog while steps complete, and STOPPING on SIGTERM', async () => {
    const sock = new NotifySocket(join(rig.dir, 'notify.sock'));
    rig.cleanups.push(async () => sock.close());
    const d = await rig.startDaemon([], { ...process.env, NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '1000000' });
    const seen: string[] = [];
    await waitFor('READY=1', () => (seen.push(...sock.drain()), seen.includes('READY=1')));
    // STATUS= says what it is doing: starting, then what it manages (before READY=1).
    expect(seen.filter((m) => m.startsWith('STATUS=starting')).length).toBeGreaterThan(0);
    expect(seen).toContainEqual(expect.stringMatching(/^STATUS=managing \d+ of \d+ domains?$/));
    await waitFor('two watchdog pings', () => sock.drain().filter((m) => m === 'WATCHDOG=1').length >= 2);
    await d.stop();
    expect(sock.drain()).toContain('STOPPING=1');
    expect(await d.proc.exited).toBe(0);
  });
});
