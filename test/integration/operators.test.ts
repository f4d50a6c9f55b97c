/**
 * Issue 14's promises, end to end with the real daemon on a simulated host: a domain whose
 * setmaxmem is denied fails alone; an operator's target is kept (a pin) until `unpin`; a
 * reservation outlives kill -9; a launch whose command cannot run leaves no reservation; a second
 * daemon is refused. Time is counted in daemon steps (500 ms each in the test policy).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, Rig, runCtl, waitFor, type Daemon } from './harness.js';

describe('xenballoond with faults and operators (issue 14)', () => {
  const rig = new Rig();
  let d: Daemon;

  beforeAll(async () => {
    await rig.start(['--inject', 'setmaxmem-eperm:idle-3']);
    d = await rig.startDaemon();
  });
  afterAll(() => rig.cleanup());

  const stepsFrom = async (n: number) => {
    const start = (await d.status()).daemon.steps;
    await waitFor(`${n} more steps`, async () => (await d.status()).daemon.steps >= start + n);
  };

  it('a domain whose setmaxmem is denied is flagged error; the daemon keeps stepping and manages the rest', async () => {
    const idle = await rig.create('idle-3', 'steady');
    const web = await rig.create('web-1', 'steady');
    await rig.setNeed(idle, 100 * MiB);
    await rig.setNeed(web, 100 * MiB);
    const flagged = await waitFor('idle-3 flagged error', async () => {
      const x = await d.domain('idle-3');
      return x?.flags.includes('error') ? x : undefined;
    });
    expect(flagged.error).toMatchObject({ action: 'setMaxmem', code: 'EPERM' });
    await stepsFrom(10);
    const st = await d.status();
    expect(st.daemon.stalled).toBe(false);
    expect(st.daemon.step_failures).toBe(0);
    const w = st.domains.find((x) => x.domid === web);
    expect(w?.flags).not.toContain('error');
    // web-1 was managed meanwhile: its maxmem follows its (lower) target.
    expect(w?.target_kib).toBeLessThan(512 * MiB);
    expect(w?.maxmem_kib).toBeLessThan(512 * MiB);
    const ex = await runCtl(['--control', rig.control, 'explain', 'idle-3']);
    expect(ex.stdout).toMatch(/error: setMaxmem to \d+ KiB failed with EPERM/);
  });

  it('keeps a target written from dom0 (xl mem-set) as a pin for 16 steps, raising maxmem, until unpin', async () => {
    const dom = await rig.create('pinme', 'steady');
    await rig.setNeed(dom, 100 * MiB);
    // Once it reports (before that, target writes are the toolstack's, building it).
    await waitFor('pinme managed', async () => (await d.domain('pinme'))?.need_kib != null);
    const want = 800 * MiB; // above its current maxmem: the pin must raise it
    await rig.xs!.write(`/local/domain/${dom}/memory/target`, String(want));
    await waitFor('pinned', async () => (await d.domain('pinme'))?.flags.includes('pinned') ?? false);
    await stepsFrom(16);
    expect(await rig.target(dom)).toBe(want);
    const pinned = await d.domain('pinme');
    expect(pinned?.pin?.target_kib).toBe(want);
    expect(pinned?.maxmem_kib).toBeGreaterThanOrEqual(want);
    expect(d.logs().some((l) => /target was set to .* by someone else/.test(l.msg))).toBe(true);
    const un = await runCtl(['--control', rig.control, 'unpin', 'pinme']);
    expect(un).toMatchObject({ code: 0 });
    await waitFor('managed again: the target moves toward its need', async () => (await rig.target(dom)) < want);
    expect((await d.domain('pinme'))?.flags).not.toContain('pinned');
  });

  it('pin DOMAIN SIZE sets and holds a target; it survives a restart', async () => {
    const r = await runCtl(['--control', rig.control, 'pin', 'web-1', '300M']);
    expect(r).toMatchObject({ code: 0 });
    const web = (await d.domain('web-1'))!.domid;
    await waitFor('target 300M', async () => (await rig.target(web)) === 300 * MiB);
    await d.kill9();
    d = await rig.startDaemon();
    const again = await waitFor('pin restored', async () => {
      const x = await d.domain('web-1');
      return x?.flags.includes('pinned') ? x : undefined;
    });
    expect(again.pin?.target_kib).toBe(300 * MiB);
    await stepsFrom(6);
    expect(await rig.target(web)).toBe(300 * MiB);
    expect(await runCtl(['--control', rig.control, 'unpin', 'web-1'])).toMatchObject({ code: 0 });
  });

  it('a reservation outlives kill -9: same ID, in status --json after the restart', async () => {
    const r = await runCtl(['--control', rig.control, 'reserve', '64M', '--ttl', '10m']);
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(/^r\d+$/);
    await d.kill9();
    d = await rig.startDaemon();
    const js = await runCtl(['--control', rig.control, 'status', '--json']);
    const st = JSON.parse(js.stdout) as { reservations: { id: string; kib: number; state: string; expires_at_ms: number }[] };
    const res = st.reservations.find((x) => x.id === id);
    expect(res).toMatchObject({ id, kib: 64 * MiB, state: 'held' });
    expect(res!.expires_at_ms - Date.now()).toBeGreaterThan(8 * 60_000);
    // A new reservation never reuses an ID handed out before the restart.
    const next = await runCtl(['--control', rig.control, 'reserve', '16M']);
    expect(next.stdout.trim()).not.toBe(id);
    for (const x of [id, next.stdout.trim()]) expect(await runCtl(['--control', rig.control, 'release', x])).toMatchObject({ code: 0 });
  });

  it('launch with a command that cannot run leaves no reservation', async () => {
    const r = await runCtl(['--control', rig.control, 'launch', '--reserve', '32M', '--', '/nonexistent/xl', 'create', 'x.cfg']);
    expect(r.code).toBe(127);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/cannot run \/nonexistent\/xl: command not found/);
    expect((await d.status()).reservations).toEqual([]);
  });

  it('refuses a second daemon on the same xenstore with one line', async () => {
    const other = await new Rig().startSecond(rig);
    expect(other.code).toBe(1);
    expect(other.stderr.trim().split('\n')).toHaveLength(1);
    expect(other.stderr).toMatch(/another xenballoond \(pid \d+, control socket .*control\.sock\) is managing this xenstore; stop it first/);
  });
});

describe('xenballoond with a xenstored that stops answering (sim-host --inject xenstore-stall)', () => {
  const rig = new Rig();
  let d: Daemon;

  beforeAll(async () => {
    // The store hangs from 15 s to 35 s of the host's time: after the daemon has started.
    await rig.start(['--inject', 'xenstore-stall:20@15s']);
    d = await rig.startDaemon();
  });
  afterAll(() => rig.cleanup());

  it('shows xenstore unresponsive while it hangs, logs it once, keeps its control socket, and recovers', async () => {
    await waitFor('unresponsive', async () => (await d.status()).daemon.xenstore === 'unresponsive');
    const st = await d.status();
    expect(st.daemon.xenstore_connected).toBe(true);
    const top = await runCtl(['--control', rig.control, 'status']);
    expect(top.stdout).toMatch(/XENSTORE UNRESPONSIVE/);
    await waitFor('answers again', async () => (await d.status()).daemon.xenstore === 'connected');
    expect(d.logs().filter((l) => /xenstored has not answered a read/.test(l.msg))).toHaveLength(1);
    expect(d.logs().some((l) => l.msg === 'xenstored answers again')).toBe(true);
  });
});
