/**
 * The watch event shim (native/xbdshim.c through src/xen/xenstore-shim.ts): events of watches
 * opened with `{ value: true }` carry the changed node's value, batches keep xenstored's order,
 * and a shim that cannot be loaded is one clear error.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { XenStore, XenStoreError, type WatchEvent } from '../../src/xen/xenstore.js';
import { decodeShimRecords, defaultShimPath, VALUE_TOKEN_PREFIX } from '../../src/xen/xenstore-shim.js';
import { startXenstored, type XenstoredProcess } from '../helpers/xenstored.js';

const WAIT_MS = 20_000;

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const shim = defaultShimPath();
const opened: XenStore[] = [];
let server: XenstoredProcess;
let n = 0;

async function open(withShim = true): Promise<XenStore> {
  const xs = await XenStore.open({ path: server.socket, ...(withShim && shim !== undefined ? { eventShim: shim } : {}) });
  opened.push(xs);
  return xs;
}

beforeAll(async () => {
  if (shim === undefined) throw new Error('build/lib/libxbdshim.so is missing: run make build');
  server = await startXenstored();
});
afterEach(async () => {
  for (const xs of opened.splice(0)) await xs.close();
});
afterAll(async () => {
  await server.stop();
});

describe('value watches through the shim', () => {
  it('deliver each change with the value read after it; a removed node comes as null', async () => {
    const base = `/shim/t${++n}`;
    const xs = await open();
    const writer = await open(false);
    await writer.write(`${base}/k`, 'first');
    const got: WatchEvent[] = [];
    (await xs.watch(base, 'vt', { value: true })).on('event', (e: WatchEvent) => got.push(e));
    await until(() => got.length === 1, 'the registration event');
    await writer.write(`${base}/k`, 'second');
    await until(() => got.length === 2, 'the change');
    await writer.rm(`${base}/k`);
    await until(() => got.length === 3, 'the removal');
    expect(got.map((e) => e.token)).toEqual(['vt', 'vt', 'vt']);
    expect(got[0]?.value?.toString()).toBe(''); // the watched node itself: a directory, empty
    expect(got[1]).toMatchObject({ path: `${base}/k` });
    expect(got[1]?.value?.toString()).toBe('second');
    expect(got[2]).toMatchObject({ path: `${base}/k`, value: null });
  });

  it('keeps xenstored order across a burst, and the last event carries the final value', async () => {
    const base = `/shim/t${++n}`;
    const xs = await open();
    const writer = await open(false);
    const got: WatchEvent[] = [];
    (await xs.watch(base, 'burst', { value: true })).on('event', (e: WatchEvent) => got.push(e));
    await until(() => got.length === 1, 'the registration event');
    // Written without waiting for each reply, so many events are queued per wake-up.
    await Promise.all(Array.from({ length: 300 }, (_, i) => writer.write(`${base}/k${i % 30}`, `v${i}`)));
    await until(() => got.length === 301, '300 events');
    expect(got.slice(1).map((e) => e.path)).toEqual(Array.from({ length: 300 }, (_, i) => `${base}/k${i % 30}`));
    // A value, when it came, was read after its event: the last one per key is the final value,
    // or absent (past the shim's per-batch read budget: the consumer reads it).
    for (let k = 0; k < 30; k++) {
      const last = got.filter((e) => e.path === `${base}/k${k}`).at(-1);
      if (last?.value !== undefined) expect(last.value?.toString()).toBe(`v${270 + k}`);
    }
    expect(got.filter((e) => e.value !== undefined).length).toBeGreaterThan(0);
  });

  it('plain watches on the same handle get no value; without the shim value watches get none either', async () => {
    const base = `/shim/t${++n}`;
    const withShim = await open();
    const without = await open(false);
    const plain: WatchEvent[] = [];
    const noShim: WatchEvent[] = [];
    (await withShim.watch(base, 'plain')).on('event', (e: WatchEvent) => plain.push(e));
    (await without.watch(base, 'v', { value: true })).on('event', (e: WatchEvent) => noShim.push(e));
    await without.write(`${base}/k`, 'x');
    await until(() => plain.length === 2 && noShim.length === 2, 'the events');
    expect(plain.every((e) => !('value' in e))).toBe(true);
    expect(noShim.every((e) => !('value' in e))).toBe(true);
  });

  it('re-registers value watches on reconnect: their events still carry values', async () => {
    const base = `/shim/t${++n}`;
    const xs = await open();
    const writer = await open(false);
    const got: WatchEvent[] = [];
    (await xs.watch(base, 'again', { value: true })).on('event', (e: WatchEvent) => got.push(e));
    await until(() => got.length === 1, 'the registration event');
    await xs.reconnect();
    await until(() => got.length === 2, 'the registration event on the new connection');
    await writer.write(`${base}/k`, 'after');
    await until(() => got.length === 3, 'a change after reconnecting');
    expect(got[2]?.value?.toString()).toBe('after');
    expect(got[2]?.token).toBe('again');
  });

  it('refuses tokens with the binding\'s reserved prefix', async () => {
    const xs = await open();
    const err = await xs.watch('/shim/x', `${VALUE_TOKEN_PREFIX}mine`).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(XenStoreError);
    expect((err as XenStoreError).code).toBe('EINVAL');
  });
});

describe('loading the shim', () => {
  it('fails open with one ENOENT error that says how to get it', async () => {
    const err = await XenStore.open({ path: server.socket, eventShim: '/nonexistent/libxbdshim.so' })
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(XenStoreError);
    expect((err as XenStoreError).code).toBe('ENOENT');
    expect((err as XenStoreError).message).toContain('/nonexistent/libxbdshim.so');
    expect((err as XenStoreError).message).toContain('make build');
    expect((err as XenStoreError).message.split('\n')).toHaveLength(1);
  });
});

describe('decodeShimRecords', () => {
  it('reads path, token and value (or its absence) of each record', () => {
    const rec = (path: string, token: string, v: number, value = '') => {
      const head = Buffer.alloc(12);
      head.writeUInt32LE(path.length, 0);
      head.writeUInt32LE(token.length, 4);
      head.writeInt32LE(v, 8);
      return Buffer.concat([head, Buffer.from(path), Buffer.from(token), Buffer.from(value)]);
    };
    const buf = Buffer.concat([rec('/a', 't1', 3, 'abc'), rec('/b', 't2', -1), rec('/c', 't3', -2)]);
    const evs = decodeShimRecords(buf, buf.length, 3);
    expect(evs.map((e) => [e.path, e.token])).toEqual([['/a', 't1'], ['/b', 't2'], ['/c', 't3']]);
    expect(evs[0]?.value?.toString()).toBe('abc');
    expect(evs[1]?.value).toBeUndefined();
    expect(evs[2]?.value).toBeNull(); // -ENOENT
  });
});
