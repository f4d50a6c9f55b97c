/**
 * The guest tools against our xenstore server, acting as real guests through a domain socket
 * (the guest's permissions and quotas apply): what xenballoon-report writes, the daemon's
 * parser reads back exactly; a guest cannot write another domain's keys nor dom0-owned memory/
 * unless provisioning gave it the node; the publisher survives xenstored going away.
 */
import { join } from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDomainReport, REPORT_PATHS } from '../../src/report/domain.js';
import { provisionGuestNodes } from '../../src/report/provision.js';
import { bootServer, XenstoredServer } from '../../src/sim/xenstored/index.js';
import type { XenstoreSession } from '../../src/sim/xenstored/session.js';
import type { XenstoreNodeOps } from '../../src/xen/xenstore-types.js';
import { Child, copyFixture, eatmemBin, procFixtures, reportBin, tempDir } from '../helpers/native.js';
import { startInProcessXenstored } from '../helpers/xenstored.js';

const LAB = join(procFixtures, 'constructed-6.1-debian12-pv-lab');
const REPORT = '/local/domain/1/data/xenballoon/report';

let cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function server() {
  const xs = await startInProcessXenstored({ domains: [1, 2] });
  cleanups.push(() => xs.stop());
  const dom0 = xs.server.session(0);
  cleanups.push(() => dom0.close());
  const guestEnv = (domid: number) => ({ ...process.env, XENSTORED_PATH: xs.domainSockets.get(domid) as string });
  return { xs, dom0, guestEnv };
}

/** Runs a tool to completion without blocking the event loop (the server lives in this process). */
async function run(bin: string, args: string[], env: NodeJS.ProcessEnv) {
  const c = new Child(bin, args, env);
  cleanups.push(() => c.stop());
  const { code } = await c.waitExit();
  return { code, out: c.out.join('\n'), err: c.err.join('\n') };
}

function readOrNull(s: XenstoreSession, path: string): Buffer | null {
  return s.exists(path) ? s.read(path) : null;
}

async function until<T>(what: string, f: () => T | null | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Our server's in-process session as the XenstoreNodeOps provisioning is written against. */
function nodeOps(s: XenstoreSession): XenstoreNodeOps {
  return {
    mkdir: async (p) => s.mkdir(p),
    getPermissions: async (p) => s.getPermissions(p),
    setPermissions: async (p, perms) => s.setPermissions(p, perms),
  };
}

describe('xenballoon-report as a guest on our xenstored', () => {
  it.each(readdirSync(procFixtures))('%s: the record it writes is what the daemon reads back', async (name) => {
    const { dom0, guestEnv } = await server();
    const dir = join(procFixtures, name);
    const printed = await run(reportBin, ['--once', '--print', '--proc', dir, '--sys', join(dir, 'sys')], process.env);
    const r = await run(reportBin, ['--once', '--proc', dir, '--sys', join(dir, 'sys')], guestEnv(1));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const stored = dom0.read(REPORT);
    expect(stored.toString('latin1')).toBe(printed.out + '\n');
    expect(stored.length).toBeLessThanOrEqual(2048);
    const parsed = parseDomainReport({ v1: stored });
    expect(parsed).toMatchObject({ ok: true, report: { format: 'v1', seq: 1 } });
    // The node the guest created under its data/ is its own, and no other guest can read it.
    expect(dom0.getPermissions(REPORT)[0]).toEqual({ domid: 1, perm: 'none' });
  });

  it("is refused when it writes another domain's key or dom0's memory/", async () => {
    const { dom0, guestEnv } = await server();
    const other = await run(reportBin, ['--once', '--proc', LAB, '--key', '/local/domain/2/data/xenballoon/report'], guestEnv(1));
    expect(other.code).toBe(1);
    expect(other.err).toMatch(/cannot write \/local\/domain\/2\/data\/xenballoon\/report: Permission denied/);
    expect(readOrNull(dom0, '/local/domain/2/data/xenballoon/report')).toBeNull();
    const memory = await run(reportBin, ['--once', '--proc', LAB, '--key', 'memory/meminfo'], guestEnv(1));
    expect(memory.code).toBe(1);
    expect(memory.err).toMatch(/Permission denied/);
  });

  it('can write memory/ nodes once provisioning gave them to the guest (legacy formats)', async () => {
    const { dom0, guestEnv } = await server();
    const result = await provisionGuestNodes(nodeOps(dom0), 1, { legacyMemoryNodes: true });
    expect(result.created).toContain('/local/domain/1/memory/meminfo');
    expect(result.fixed).toEqual([]);
    // Pre-created but empty: not a report yet, and not a rejection.
    expect(parseDomainReport({ meminfo: dom0.read('/local/domain/1/memory/meminfo') })).toBeNull();
    const r = await run(reportBin, ['--once', '--proc', LAB, '--key', 'memory/meminfo'], guestEnv(1));
    expect(r.code).toBe(0);
    // Provisioning again changes nothing, and the guest still owns what it wrote.
    expect((await provisionGuestNodes(nodeOps(dom0), 1, { legacyMemoryNodes: true })).unchanged).toHaveLength(4);
    expect(dom0.getPermissions('/local/domain/1/memory/meminfo')[0]).toEqual({ domid: 1, perm: 'none' });
    // Another guest cannot overwrite it.
    const peek = await run(reportBin, ['--once', '--proc', LAB, '--key', '/local/domain/1/memory/meminfo'], guestEnv(2));
    expect(peek.code).toBe(1);
  });

  it('--self takes maxmem from memory/static-max, which the guest may read', async () => {
    const { dom0, guestEnv } = await server();
    dom0.write('/local/domain/1/memory/static-max', String(256 * 1024));
    const t = tempDir('self-xs');
    cleanups.push(t.cleanup);
    const dir = copyFixture('constructed-6.1-debian12-pv-lab', t.dir);
    const r = await run(reportBin, ['--self', '--once', '--verbose', '--proc', dir, '--sys', join(dir, 'sys')], guestEnv(1));
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/maxmem 262144 KiB \(from memory\/static-max\), floor 106496 KiB/);
    // 131072 - (131072 - 106496) / 10, as with --self-maxmem 256M
    expect(readFileSync(join(dir, 'sys/devices/system/xen_memory/xen_memory0/target_kb'), 'utf8')).toBe('128615\n');
    expect(parseDomainReport({ v1: dom0.read(REPORT) })).toMatchObject({ ok: true });
  });

  it('keeps publishing across a xenstored restart, started before xenstored existed', async () => {
    const t = tempDir('restart');
    cleanups.push(t.cleanup);
    const dom0Sock = join(t.dir, 'xenstored.sock');
    const dom1Sock = join(t.dir, 'dom1.sock');
    const p = new Child(reportBin, ['--interval', '0.25', '--heartbeat', '1', '--proc', LAB], { ...process.env, XENSTORED_PATH: dom1Sock });
    cleanups.push(() => p.stop());
    await p.waitFor('a failed connection', () => p.err.some((l) => l.includes('cannot connect to xenstore')));

    const boot = async () => {
      const s = new XenstoredServer();
      await bootServer(s, dom0Sock, [{ domid: 1, path: dom1Sock }]);
      return s;
    };
    let s = await boot();
    cleanups.push(() => s.close());
    let dom0 = s.session(0);
    const first = await until('a first record', () => readOrNull(dom0, REPORT));
    expect(parseDomainReport({ v1: first })).toMatchObject({ ok: true });
    dom0.close();
    await s.close();

    s = await boot();
    dom0 = s.session(0);
    const again = await until('a record on the new server', () => readOrNull(dom0, REPORT));
    dom0.close();
    const parsed = parseDomainReport({ v1: again });
    expect(parsed?.ok && parsed.report.seq !== null && parsed.report.seq > 1).toBe(true);
    await p.waitFor('the recovery logged', () => p.err.some((l) => l.includes('xenstore reachable again')));
    p.proc.kill('SIGTERM');
    expect(await p.waitExit()).toEqual({ code: 0, signal: null });
  });
});

describe('eatmem --publish as a guest', () => {
  it('publishes the chunk it holds and 0 once it freed it', async () => {
    const { dom0, guestEnv } = await server();
    const seen: string[] = [];
    dom0.watch('/local/domain/1/data/eatmem/chunk', 'eatmem');
    dom0.onWatchEvent(() => {
      const v = readOrNull(dom0, '/local/domain/1/data/eatmem/chunk');
      if (v !== null) seen.push(v.toString('latin1'));
    });
    const r = await run(eatmemBin, ['--max', '8M', '--sleep-max', '0', '--rounds', '2', '--seed', '5', '--publish'], guestEnv(1));
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const chunks = [...r.out.matchAll(/chunk_kib=(\d+)/g)].map((m) => m[1]);
    expect(seen).toEqual([chunks[0], '0', chunks[1], '0']);
  });
});

describe('REPORT_PATHS', () => {
  it('names the key xenballoon-report writes by default', () => {
    expect(REPORT.endsWith(REPORT_PATHS.v1)).toBe(true);
  });
});
