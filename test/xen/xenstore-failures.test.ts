/**
 * The binding's failure paths that need no xenstore server: a missing socket, a server that
 * accepts and never answers, one that drops the connection, and arguments refused locally.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XenStore, XenStoreError } from '../../src/xen/xenstore.js';

let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xs-fail-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

/** A unix socket server that runs `onConn` for each connection; closed after the test. */
async function listener(onConn: (c: net.Socket) => void): Promise<string> {
  const path = join(dir, 'sock');
  const conns = new Set<net.Socket>();
  const srv = net.createServer((c) => {
    conns.add(c);
    c.on('close', () => conns.delete(c));
    c.on('error', () => undefined);
    onConn(c);
  });
  await new Promise<void>((resolve) => srv.listen(path, resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    for (const c of conns) c.destroy();
    srv.close(() => resolve());
  }));
  return path;
}

/** Set by xenstore-shim-suite.test.ts, which runs this file again with the watch event shim. */
const SHIM = (globalThis as { xbdTestEventShim?: string }).xbdTestEventShim;

async function openStore(path: string, timeoutMs: number): Promise<XenStore> {
  const xs = await XenStore.open({ path, timeoutMs, ...(SHIM === undefined ? {} : { eventShim: SHIM }) });
  cleanups.push(() => xs.close());
  return xs;
}

async function rejection(p: Promise<unknown>): Promise<XenStoreError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(XenStoreError);
  return err as XenStoreError;
}

describe('XenStore.open', () => {
  it('fails with a typed ENOENT when no socket exists', async () => {
    const err = await rejection(XenStore.open({ path: join(dir, 'missing.sock') }));
    expect(err.code).toBe('ENOENT');
    expect(err.op).toBe('open');
    expect(err.path).toBe(join(dir, 'missing.sock'));
  });

  it('fails with ECONNREFUSED when nothing listens on the socket', async () => {
    const path = await listener(() => undefined);
    // Closing the server leaves the socket file without a listener.
    await cleanups.pop()?.();
    const err = await rejection(XenStore.open({ path }));
    expect(['ECONNREFUSED', 'ENOENT']).toContain(err.code);
  });

  it('leaves XENSTORED_PATH as it was', async () => {
    const before = process.env.XENSTORED_PATH;
    await rejection(XenStore.open({ path: join(dir, 'missing.sock') }));
    expect(process.env.XENSTORED_PATH).toBe(before);
  });
});

describe('a xenstored that accepts but never answers', () => {
  it('times a call out with a typed error while the event loop keeps running', async () => {
    const path = await listener((c) => c.resume());
    const xs = await openStore(path, 1500);
    const disconnected = new Promise<XenStoreError>((resolve) => xs.once('disconnect', resolve));
    let timerFiredFirst = false;
    let settled = false;
    setTimeout(() => {
      timerFiredFirst = !settled;
    }, 10);
    const err = await rejection(xs.read('/local/domain/0/name').finally(() => {
      settled = true;
    }));
    expect(timerFiredFirst).toBe(true);
    expect(err.code).toBe('ETIMEDOUT');
    expect(err.op).toBe('read');
    expect(err.path).toBe('/local/domain/0/name');
    expect(err.connectionLost).toBe(true);
    expect((await disconnected).code).toBe('ETIMEDOUT');
    expect(xs.state).toBe('disconnected');
  });

  it('fails the calls queued behind the stuck one, and later calls at once', async () => {
    const path = await listener((c) => c.resume());
    const xs = await openStore(path, 1000);
    const results = await Promise.allSettled([xs.write('/a', '1'), xs.read('/b'), xs.mkdir('/c')]);
    const codes = results.map((r) => (r.status === 'rejected' ? (r.reason as XenStoreError).code : 'fulfilled'));
    expect(codes[0]).toBe('ETIMEDOUT');
    for (const code of codes.slice(1)) expect(['ENOTCONN', 'ETIMEDOUT']).toContain(code);
    const later = await rejection(xs.read('/d'));
    expect(later.code).toBe('ENOTCONN');
    expect(later.connectionLost).toBe(true);
  });

  it('closes without hanging and without leaving worker threads stuck', async () => {
    const path = await listener((c) => c.resume());
    const xs = await openStore(path, 800);
    const pending = xs.read('/x').catch((e: unknown) => e);
    await xs.close();
    expect(await pending).toBeInstanceOf(XenStoreError);
    expect(xs.state).toBe('closed');
    expect(xs.stats().stuckNativeCalls).toBe(0);
    const after = await rejection(xs.read('/x'));
    expect(after.code).toBe('ENOTCONN');
  });
});

describe('a xenstored that drops the connection', () => {
  it('fails the call with connectionLost and reports the disconnect', async () => {
    const path = await listener((c) => c.on('data', () => c.destroy()));
    const xs = await openStore(path, 20_000);
    const disconnected = new Promise<XenStoreError>((resolve) => xs.once('disconnect', resolve));
    const err = await rejection(xs.read('/local/domain/0/name'));
    expect(err.connectionLost).toBe(true);
    expect(err.code).not.toBe('ETIMEDOUT');
    expect((await disconnected).connectionLost).toBe(true);
    expect(xs.state).toBe('disconnected');
  });
});

describe('arguments refused before anything is sent', () => {
  it('rejects NUL bytes in paths and tokens, bad domids and bad permissions', async () => {
    const path = await listener((c) => c.resume());
    const xs = await openStore(path, 20_000);
    expect((await rejection(xs.read('/a\0b'))).code).toBe('EINVAL');
    expect((await rejection(xs.write('', 'x'))).code).toBe('EINVAL');
    expect((await rejection(xs.watch('/a', 'tok\0en'))).code).toBe('EINVAL');
    expect((await rejection(xs.getDomainPath(-1))).code).toBe('EINVAL');
    expect((await rejection(xs.getDomainPath(1.5))).code).toBe('EINVAL');
    expect((await rejection(xs.setPermissions('/a', []))).code).toBe('EINVAL');
    expect((await rejection(xs.setPermissions('/a', [{ domid: 0, perm: 'all' as never }]))).code).toBe('EINVAL');
    // Nothing reached the (silent) server, so the connection is still considered healthy.
    expect(xs.state).toBe('connected');
  });
});
