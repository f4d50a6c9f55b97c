/** The XenstoredServer API the simulator embeds: sockets added and removed at run time, close(). */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XsType } from '../../../src/wire/index.js';
import { provisionDomain, XenstoredServer } from '../../../src/sim/xenstored/index.js';
import { XsTestClient } from '../../helpers/xs-client.js';

let dir: string;
let server: XenstoredServer;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xss-'));
  server = new XenstoredServer();
});

afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe('XenstoredServer', () => {
  it('adds a domain socket at run time whose clients act as that domain, and removes it', async () => {
    await server.listen(join(dir, 'xs.sock'));
    const dom0 = server.session(0);
    provisionDomain(dom0, 7, { targetKiB: 262144 });
    dom0.introduceDomain(7);
    const path = join(dir, 'dom7.sock');
    await server.addDomainSocket(7, path);
    expect(server.domainSocketPaths().get(7)).toBe(path);
    await expect(server.addDomainSocket(7, join(dir, 'again.sock'))).rejects.toThrow(/already has a socket/);

    const g = await XsTestClient.connect(path);
    expect(await g.read('memory/target')).toBe('262144');
    const denied = await g.call(XsType.WRITE, ['memory/target']);
    expect(denied.error).toBe('EACCES');
    const dp = await g.call(XsType.GET_DOMAIN_PATH, ['7']);
    expect(dp.payload.toString('latin1')).toBe('/local/domain/7\0');

    await server.removeDomainSocket(7);
    await g.waitForClose();
    expect(existsSync(path)).toBe(false);
    expect(server.domainSocketPaths().has(7)).toBe(false);
    dom0.close();
  });

  it('releasing a domain disconnects its socket clients but keeps its socket for a new domain', async () => {
    const dom0 = server.session(0);
    provisionDomain(dom0, 8);
    dom0.introduceDomain(8);
    const path = join(dir, 'dom8.sock');
    await server.addDomainSocket(8, path);
    const g = await XsTestClient.connect(path);
    await g.write('data/x', '1');
    expect(server.releaseDomain(8)).toBe(true);
    expect(server.releaseDomain(8)).toBe(false);
    await g.waitForClose();
    expect(existsSync(path)).toBe(true);
  });

  it('close() disconnects every client and removes every socket file', async () => {
    const main = join(dir, 'xs.sock');
    const d9 = join(dir, 'dom9.sock');
    await server.listen(main);
    await server.addDomainSocket(9, d9);
    const a = await XsTestClient.connect(main);
    const b = await XsTestClient.connect(d9);
    const s = server.session(0);
    await server.close();
    await a.waitForClose();
    await b.waitForClose();
    expect(existsSync(main)).toBe(false);
    expect(existsSync(d9)).toBe(false);
    expect(s.closed).toBe(true);
    expect(() => s.read('/')).toThrow(/closed/);
  });

  it('an in-process guest session and a socket client of the same domain share its quotas', async () => {
    server = new XenstoredServer({ limits: { watchesPerDomain: 2 } });
    const path = join(dir, 'dom3.sock');
    const dom0 = server.session(0);
    provisionDomain(dom0, 3);
    await server.addDomainSocket(3, path);
    const inproc = server.session(3);
    inproc.watch('data/a', 't');
    inproc.watch('data/b', 't');
    inproc.watch('data/c', 't');
    const c = await XsTestClient.connect(path);
    const r = await c.call(XsType.WATCH, ['data/d', 't']);
    expect(r.error).toBe('E2BIG');
    c.close();
  });
});

describe('XenstoreSession.asNodeOps', () => {
  it('runs provisioning code written against XenstoreNodeOps, with ENOENT as the error code', async () => {
    const ops = server.session(0).asNodeOps();
    await ops.mkdir('/prov/a');
    await ops.setPermissions('/prov/a', [{ domid: 4, perm: 'none' }]);
    expect(await ops.getPermissions('/prov/a')).toEqual([{ domid: 4, perm: 'none' }]);
    await expect(ops.getPermissions('/prov/missing')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('closes a guest\'s connections beyond connectionsPerDomain; dom0 and other guests still connect', async () => {
    const main = join(dir, 'xs.sock');
    await server.listen(main);
    const dom0 = server.session(0);
    provisionDomain(dom0, 5);
    dom0.introduceDomain(5);
    const path = join(dir, 'dom5.sock');
    await server.addDomainSocket(5, path);
    const limit = server.core.limits.connectionsPerDomain;
    const clients: XsTestClient[] = [];
    for (let i = 0; i < limit; i++) clients.push(await XsTestClient.connect(path));
    await clients[0]!.write('data/ok', '1');
    expect(server.core.connectionsOf(5)).toBe(limit);
    const extra = await XsTestClient.connect(path);
    await extra.waitForClose();
    const d = await XsTestClient.connect(main);
    await d.write('/still', 'answers');
    for (const c of [...clients, d]) c.close();
  });

  it('a stalled server answers nothing until it resumes, then answers what waited', async () => {
    const main = join(dir, 'xs.sock');
    await server.listen(main);
    const c = await XsTestClient.connect(main);
    await c.write('/a', '1');
    server.core.setStalled(true);
    let answered = false;
    const p = c.write('/a', '2').then(() => (answered = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(answered).toBe(false);
    server.core.setStalled(false);
    await p;
    expect(server.session(0).readText('/a')).toBe('2');
    c.close();
  });
});
