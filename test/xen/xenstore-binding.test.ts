/**
 * The libxenstore binding against our xenstore server running in another process (the built
 * `xenballoonctl xenstored`): the real libxenstore.so.4 talks the real wire protocol.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isNotFound, XenStore, XenStoreError, type WatchEvent } from '../../src/xen/xenstore.js';
import { ctlPath, startXenstored, waitForXenstored, type XenstoredProcess } from '../helpers/xenstored.js';

const WAIT_MS = 20_000;
/** Set by xenstore-shim-suite.test.ts, which runs this file again with the watch event shim. */
const SHIM = (globalThis as { xbdTestEventShim?: string }).xbdTestEventShim;

/** Resolves once `cond()` holds, checking on every event-loop turn (no fixed sleeps). */
async function until(cond: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function rejection(p: Promise<unknown>): Promise<XenStoreError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(XenStoreError);
  return err as XenStoreError;
}

const opened: XenStore[] = [];
async function open(socket: string, extra: Parameters<typeof XenStore.open>[0] = {}): Promise<XenStore> {
  const xs = await XenStore.open({ path: socket, ...(SHIM === undefined ? {} : { eventShim: SHIM }), ...extra });
  opened.push(xs);
  return xs;
}
afterEach(async () => {
  for (const xs of opened.splice(0)) await xs.close();
});

describe('against a running xenstored', () => {
  let server: XenstoredProcess;
  let xs: XenStore;
  let other: XenStore;
  let n = 0;
  /** A fresh subtree per test, so tests do not see each other's nodes. */
  const base = () => `/test/t${n}`;

  beforeAll(async () => {
    server = await startXenstored({ domains: [3] });
  });
  afterAll(async () => {
    await server.stop();
  });
  const setup = async () => {
    n++;
    xs = await open(server.socket);
    other = await open(server.socket);
  };

  describe('nodes', () => {
    it('writes and reads strings and binary values byte for byte', async () => {
      await setup();
      await xs.write(`${base()}/s`, 'hello\nworld');
      expect(await xs.readString(`${base()}/s`)).toBe('hello\nworld');
      const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await xs.write(`${base()}/bin`, all);
      expect((await other.read(`${base()}/bin`)).equals(all)).toBe(true);
      await xs.write(`${base()}/empty`, '');
      expect((await xs.read(`${base()}/empty`)).length).toBe(0);
    });

    it('reports a missing node as ENOENT with the op and path', async () => {
      await setup();
      const err = await rejection(xs.read(`${base()}/missing`));
      expect(isNotFound(err)).toBe(true);
      expect(err.op).toBe('read');
      expect(err.path).toBe(`${base()}/missing`);
      expect(err.connectionLost).toBe(false);
      expect(xs.state).toBe('connected');
    });

    it('lists children in creation order, creates parents, mkdir is idempotent, rm is recursive', async () => {
      await setup();
      await xs.write(`${base()}/d/b/deep`, '1');
      await xs.mkdir(`${base()}/d/a`);
      await xs.mkdir(`${base()}/d/a`);
      await xs.write(`${base()}/d/c`, '3');
      expect(await xs.directory(`${base()}/d`)).toEqual(['b', 'a', 'c']);
      expect(await xs.directory(`${base()}/d/a`)).toEqual([]);
      await xs.rm(`${base()}/d/b`);
      expect(await xs.directory(`${base()}/d`)).toEqual(['a', 'c']);
      expect(isNotFound(await rejection(xs.read(`${base()}/d/b/deep`)))).toBe(true);
    });

    it('refuses a value larger than the protocol allows with E2BIG and stays connected', async () => {
      await setup();
      const err = await rejection(xs.write(`${base()}/big`, Buffer.alloc(5000, 1)));
      expect(err.code).toBe('E2BIG');
      expect(xs.state).toBe('connected');
      await xs.write(`${base()}/ok`, 'still fine');
    });

    it('round-trips permissions', async () => {
      await setup();
      await xs.write(`${base()}/p`, 'v');
      const perms = [{ domid: 5, perm: 'none' as const }, { domid: 7, perm: 'read' as const }, { domid: 9, perm: 'both' as const }];
      await xs.setPermissions(`${base()}/p`, perms);
      expect(await other.getPermissions(`${base()}/p`)).toEqual(perms);
      expect((await rejection(xs.getPermissions(`${base()}/nope`))).code).toBe('ENOENT');
    });

    it('answers domain queries', async () => {
      await setup();
      expect(await xs.getDomainPath(7)).toBe('/local/domain/7');
      expect(await xs.isDomainIntroduced(0)).toBe(true);
      expect(await xs.isDomainIntroduced(3)).toBe(true);
      expect(await xs.isDomainIntroduced(4242)).toBe(false);
    });

    it('introduces and releases a domain, firing @introduceDomain and @releaseDomain', async () => {
      await setup();
      const seen: string[] = [];
      const intro = await other.watch('@introduceDomain');
      const rel = await other.watch('@releaseDomain');
      intro.on('event', (e: WatchEvent) => seen.push(e.path));
      rel.on('event', (e: WatchEvent) => seen.push(e.path));
      await until(() => seen.length === 2, 'the registration events');
      await xs.introduceDomain(11, 0x1234, 5);
      expect(await xs.isDomainIntroduced(11)).toBe(true);
      await until(() => seen.length === 3, '@introduceDomain');
      await xs.releaseDomain(11);
      expect(await xs.isDomainIntroduced(11)).toBe(false);
      await until(() => seen.length === 4, '@releaseDomain');
      expect(seen.slice(2)).toEqual(['@introduceDomain', '@releaseDomain']);
    });

    it('acts as the guest on a domain socket: permissions are enforced', async () => {
      await setup();
      const guest = await open(server.domainSockets.get(3) as string);
      expect((await rejection(guest.write('/local/domain/3/memory/target', '1'))).code).toBe('EACCES');
      await guest.write('data/hello', 'from dom3'); // relative to /local/domain/3
      expect(await xs.readString('/local/domain/3/data/hello')).toBe('from dom3');
    });

    it('keeps program order when calls are not awaited one by one', async () => {
      await setup();
      const p = `${base()}/order`;
      const ops: Promise<unknown>[] = [];
      const seen: string[] = [];
      for (let i = 0; i < 50; i++) {
        ops.push(xs.write(p, String(i)));
        ops.push(xs.readString(p).then((v) => seen.push(v)));
      }
      await Promise.all(ops);
      expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
    });
  });

  describe('transactions', () => {
    it('commits a transaction and returns its result', async () => {
      await setup();
      const r = await xs.transaction(async (tx) => {
        await tx.write(`${base()}/a`, '1');
        await tx.write(`${base()}/b`, '2');
        return (await tx.directory(base())).length;
      });
      expect(r).toBe(2);
      expect(await other.readString(`${base()}/b`)).toBe('2');
    });

    it('retries the whole function when a concurrent writer causes EAGAIN', async () => {
      await setup();
      await xs.write(`${base()}/x`, '0');
      let attempts = 0;
      await xs.transaction(async (tx, attempt) => {
        attempts++;
        const v = Number(await tx.readString(`${base()}/x`));
        if (attempt === 0) await other.write(`${base()}/x`, '100'); // conflicts with our read
        await tx.write(`${base()}/x`, String(v + 1));
      });
      expect(attempts).toBe(2);
      expect(await xs.readString(`${base()}/x`)).toBe('101');
    });

    it('gives up with EAGAIN after maxRetries more attempts', async () => {
      await setup();
      await xs.write(`${base()}/x`, '0');
      let attempts = 0;
      const err = await rejection(xs.transaction(async (tx) => {
        attempts++;
        await tx.readString(`${base()}/x`);
        await other.write(`${base()}/x`, String(attempts));
        await tx.write(`${base()}/y`, 'never');
      }, { maxRetries: 3 }));
      expect(err.code).toBe('EAGAIN');
      expect(attempts).toBe(4);
      expect(isNotFound(await rejection(xs.read(`${base()}/y`)))).toBe(true);
    });

    it('aborts when the function throws: nothing is written, the error comes back', async () => {
      await setup();
      const boom = new Error('boom');
      await expect(xs.transaction(async (tx) => {
        await tx.write(`${base()}/z`, 'no');
        throw boom;
      })).rejects.toBe(boom);
      expect(isNotFound(await rejection(xs.read(`${base()}/z`)))).toBe(true);
    });

    it('keeps concurrent read-modify-write increments exact', async () => {
      await setup();
      const counter = `${base()}/counter`;
      await xs.write(counter, '0');
      const bump = (h: XenStore) => h.transaction(async (tx) => {
        const v = Number(await tx.readString(counter));
        await tx.write(counter, String(v + 1));
      }, { maxRetries: 100 });
      await Promise.all(Array.from({ length: 20 }, (_, i) => bump(i % 2 === 0 ? xs : other)));
      expect(await xs.readString(counter)).toBe('20');
    });

    it('refuses a transaction object used after the transaction ended', async () => {
      await setup();
      let saved: { write(p: string, v: string): Promise<void> } | undefined;
      await xs.transaction(async (tx) => {
        saved = tx;
      });
      const err = await rejection(saved!.write(`${base()}/late`, 'x'));
      expect(err.code).toBe('EINVAL');
    });
  });

  describe('watches', () => {
    it('fires once on registration, then for changes at or below the path, in order', async () => {
      await setup();
      await xs.mkdir(base());
      const w = await xs.watch(base());
      const got: string[] = [];
      w.on('event', (e: WatchEvent) => got.push(e.path));
      for (let i = 0; i < 20; i++) await other.write(`${base()}/k${i}`, String(i));
      await until(() => got.length >= 21, '21 watch events');
      expect(got).toEqual([base(), ...Array.from({ length: 20 }, (_, i) => `${base()}/k${i}`)]);
    });

    it('delivers through the async iterator and the XenStore "watch" event; unwatch stops them', async () => {
      await setup();
      const global: WatchEvent[] = [];
      xs.on('watch', (e) => global.push(e));
      const w = await xs.watch(`${base()}/it`, 'my-token');
      const seen: string[] = [];
      const consumer = (async () => {
        for await (const e of w) {
          seen.push(e.path);
          if (seen.length === 3) break; // leaving the loop unwatches
        }
      })();
      await other.write(`${base()}/it/a`, '1');
      await other.write(`${base()}/it/b`, '2');
      await consumer;
      expect(seen).toEqual([`${base()}/it`, `${base()}/it/a`, `${base()}/it/b`]);
      expect(w.active).toBe(false);
      expect(global.every((e) => e.token === 'my-token')).toBe(true);
      const before = global.length;
      await other.write(`${base()}/it/c`, '3');
      // A write through xs itself is answered after any event it caused would be queued.
      await xs.write(`${base()}/sync`, '1');
      await xs.read(`${base()}/sync`);
      expect(global.length).toBe(before);
    });

    it('refuses a token already in use', async () => {
      await setup();
      await xs.watch(`${base()}/a`, 'dup');
      expect((await rejection(xs.watch(`${base()}/b`, 'dup'))).code).toBe('EEXIST');
    });

    it('handles 1,000 watches, each getting its own events', async () => {
      await setup();
      const count = 1000;
      const hits = new Map<number, string[]>();
      const watches = [];
      for (let i = 0; i < count; i++) {
        const w = await xs.watch(`${base()}/w${i}`);
        const list: string[] = [];
        hits.set(i, list);
        w.on('event', (e: WatchEvent) => list.push(e.path));
        watches.push(w);
      }
      for (let i = 0; i < count; i++) await other.write(`${base()}/w${i}/v`, String(i));
      await until(() => [...hits.values()].every((l) => l.length >= 2), 'an event on every watch');
      for (let i = 0; i < count; i++) expect(hits.get(i)).toEqual([`${base()}/w${i}`, `${base()}/w${i}/v`]);
      await Promise.all(watches.map((w) => w.unwatch()));
      expect(xs.stats().watches).toBe(0);
    });
  });

  describe('resources', () => {
    it('does not leak: many reads, failed reads and listings keep memory bounded', async () => {
      await setup();
      const value = Buffer.alloc(4000, 0x61);
      await xs.write(`${base()}/big`, value);
      for (let i = 0; i < 20; i++) await xs.write(`${base()}/dir/c${i}`, 'x');
      const round = async (count: number) => {
        const batch: Promise<unknown>[] = [];
        for (let i = 0; i < count; i++) {
          batch.push(xs.read(`${base()}/big`));
          if (i % 10 === 0) batch.push(xs.read(`${base()}/missing`).catch(() => undefined));
          if (i % 10 === 5) batch.push(xs.directory(`${base()}/dir`));
          if (batch.length >= 64) await Promise.all(batch.splice(0));
        }
        await Promise.all(batch);
      };
      await round(3000); // warm up allocator arenas and koffi pools
      const before = process.memoryUsage.rss();
      await round(25_000); // leaking each 4 KB value would grow RSS by ~100 MB
      const grown = process.memoryUsage.rss() - before;
      expect(grown).toBeLessThan(40 * 1024 * 1024);
    });
  });
});

describe('when xenstored dies', () => {
  let dir: string;
  let socket: string;
  const children: ChildProcess[] = [];

  /** Our server on a fixed socket path, so a restart comes back where the client expects it. */
  async function serverAt(path: string): Promise<ChildProcess> {
    const child = spawn(process.execPath, [ctlPath, 'xenstored', '--socket', path], { stdio: 'ignore' });
    children.push(child);
    await waitForXenstored(path, 30_000, () => (child.exitCode !== null || child.signalCode !== null ? 'xenstored exited' : undefined));
    return child;
  }
  const killed = (c: ChildProcess) => new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGKILL');
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xs-die-'));
    socket = join(dir, 'xs.sock');
  });
  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.kill('SIGCONT');
      await killed(c);
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('fails a call in flight with a typed connection error, not a hang or a timeout', async () => {
    const child = await serverAt(socket);
    const xs = await open(socket, { timeoutMs: 60_000 });
    await xs.write('/k', 'v');
    const disconnected = new Promise<XenStoreError>((resolve) => xs.once('disconnect', resolve));
    child.kill('SIGSTOP'); // the next request is sent and never answered…
    const pending = rejection(xs.read('/k'));
    await until(() => xs.stats().inFlight > 0, 'the read to be in flight');
    await killed(child); // …until the server dies under it
    const err = await pending;
    expect(err.connectionLost).toBe(true);
    expect(err.code).not.toBe('ETIMEDOUT');
    expect(err.op).toBe('read');
    expect((await disconnected).connectionLost).toBe(true);
    expect(xs.state).toBe('disconnected');
    expect((await rejection(xs.read('/k'))).code).toBe('ENOTCONN');
  });

  it('notices an idle connection with watches dying, reconnects, and its watches fire again', async () => {
    const first = await serverAt(socket);
    const xs = await open(socket, { livenessMs: 50 });
    const w = await xs.watch('/svc');
    const got: string[] = [];
    w.on('event', (e: WatchEvent) => got.push(e.path));
    await until(() => got.length === 1, 'the registration event');
    const disconnected = new Promise<XenStoreError>((resolve) => xs.once('disconnect', resolve));
    await killed(first);
    expect((await disconnected).connectionLost).toBe(true); // no call was made: the waiter noticed
    await serverAt(socket);
    const reconnected = new Promise<void>((resolve) => xs.once('reconnect', resolve));
    await xs.reconnect();
    await reconnected;
    expect(xs.state).toBe('connected');
    await until(() => got.length === 2, 'the registration event on the new connection');
    await xs.write('/svc/x', '1');
    await until(() => got.length === 3, 'an event after reconnecting');
    expect(got).toEqual(['/svc', '/svc', '/svc/x']);
    expect(w.active).toBe(true);
  });

  it('rejects reconnect while no server is there, and succeeds once it is back', async () => {
    const first = await serverAt(socket);
    const xs = await open(socket);
    await killed(first);
    await rejection(xs.read('/x'));
    expect(xs.state).toBe('disconnected');
    const err = await rejection(xs.reconnect());
    expect(err.op).toBe('open');
    await serverAt(socket);
    await xs.reconnect();
    await xs.write('/back', 'yes');
    expect(await xs.readString('/back')).toBe('yes');
  });
});

describe('XenstoreNodeOps through the binding', () => {
  it('provisions a guest node the guest can then write (src/report/provision.ts on the real library)', async () => {
    const { provisionGuestNodes } = await import('../../src/report/provision.js');
    const server = await startXenstored({ domains: [4] });
    try {
      const xs = await open(server.socket);
      const first = await provisionGuestNodes(xs, 4);
      expect(first.created).toEqual(['/local/domain/4/data/xenballoon']);
      expect((await provisionGuestNodes(xs, 4)).unchanged).toEqual(['/local/domain/4/data/xenballoon']);
      const guest = await open(server.domainSockets.get(4) as string);
      await guest.write('data/xenballoon/report', 'v1 hello');
      expect(await xs.readString('/local/domain/4/data/xenballoon/report')).toBe('v1 hello');
    } finally {
      for (const x of opened.splice(0)) await x.close();
      await server.stop();
    }
  });
});
