/**
 * Bad and greedy clients against a live server over its sockets: the offending connection gets
 * an error or is closed, other connections are served, committed writes survive, the server
 * never crashes.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, encodeStrings, XsType } from '../../../src/wire/index.js';
import { startInProcessXenstored, startXenstored, type XenstoredHandle } from '../../helpers/xenstored.js';
import { XsTestClient } from '../../helpers/xs-client.js';

const handles: XenstoredHandle[] = [];
const clients: XsTestClient[] = [];

async function connect(path: string): Promise<XsTestClient> {
  const c = await XsTestClient.connect(path);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const h of handles.splice(0)) await h.stop();
});

function header(type: number, len: number, reqId = 1): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(reqId, 4);
  b.writeUInt32LE(len, 12);
  return b;
}

describe('bad input', () => {
  it('closes a connection that announces a payload over 4096 bytes, and keeps serving the others', async () => {
    const h = await startInProcessXenstored({ domains: [1] });
    handles.push(h);
    const good = await connect(h.socket);
    await good.write('/kept', 'committed');
    for (const path of [h.socket, h.domainSockets.get(1)!]) {
      const bad = await connect(path);
      bad.sendRaw(header(XsType.READ, 4097));
      await bad.waitForClose();
    }
    expect(await good.read('/kept')).toBe('committed');
    const fresh = await connect(h.socket);
    expect(await fresh.read('/kept')).toBe('committed');
  });

  it('answers requests split into single bytes and many requests in one write', async () => {
    const h = await startInProcessXenstored();
    handles.push(h);
    const c = await connect(h.socket);
    await c.write('/s', 'v');
    const frames = Buffer.concat(
      Array.from({ length: 50 }, (_, i) => encodeFrame({ type: XsType.READ, reqId: 1000 + i, txId: 0, payload: encodeStrings(['/s']) })),
    );
    const replies = new Promise<number>((resolve) => {
      let n = 0;
      let buf = Buffer.alloc(0);
      c.socket.prependListener('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 16 && buf.length >= 16 + buf.readUInt32LE(12)) {
          if (buf.readUInt32LE(4) >= 1000) n++;
          buf = buf.subarray(16 + buf.readUInt32LE(12));
        }
        if (n === 50) resolve(n);
      });
    });
    for (let i = 0; i < frames.length; i += 7) c.sendRaw(frames.subarray(i, Math.min(i + 7, frames.length)));
    expect(await replies).toBe(50);
    const r = await c.request(XsType.READ, encodeStrings(['/s']));
    expect(r.payload.toString()).toBe('v');
  });

  it('survives random garbage on many connections (a separate server process) and still serves', async () => {
    const h = await startXenstored({ domains: [1] });
    handles.push(h);
    const good = await connect(h.socket);
    await good.write('/committed', 'yes');
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(h.socket, h.domainSockets.get(1)!),
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
            // Well-formed frames with random types, ids and payloads reach deeper.
            fc
              .record({
                type: fc.oneof(fc.nat({ max: 24 }), fc.nat({ max: 0xffffffff })),
                reqId: fc.nat({ max: 0xffffffff }),
                txId: fc.oneof(fc.constant(0), fc.nat({ max: 3 }), fc.nat({ max: 0xffffffff })),
                payload: fc.oneof(
                  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
                  fc.array(fc.constantFrom('/', '/a', 'a', '@releaseDomain', '', 'T', '1', 'b0', '/local/domain/1'), { maxLength: 3 }).map((s) => encodeStrings(s)),
                ),
              })
              .map((f) => encodeFrame(f)),
          ),
          { maxLength: 20 },
        ),
        async (path, chunks) => {
          const c = await XsTestClient.connect(path);
          for (const chunk of chunks) c.sendRaw(chunk);
          // Half-close: the server answers what it could parse, then closes (or has already cut
          // us off for a framing error).
          c.socket.end();
          c.socket.resume();
          await c.waitForClose();
          expect(await good.read('/committed')).toBe('yes');
        },
      ),
      { numRuns: 150 },
    );
    expect((h as Awaited<ReturnType<typeof startXenstored>>).child.exitCode).toBeNull();
    const fresh = await connect(h.socket);
    expect(await fresh.read('/committed')).toBe('yes');
  });

  it('still answers a client that half-closes after sending its requests', async () => {
    const h = await startInProcessXenstored();
    handles.push(h);
    const c = await connect(h.socket);
    await c.write('/hc', 'v');
    const reply = c.request(XsType.READ, encodeStrings(['/hc']));
    c.socket.end();
    expect((await reply).payload.toString()).toBe('v');
  });
});

describe('greedy clients', () => {
  it('stops reading a flood from a client that does not read its replies, answers all of it later, and serves others meanwhile', async () => {
    const h = await startInProcessXenstored({ domains: [1] });
    handles.push(h);
    const flooder = await connect(h.domainSockets.get(1)!);
    flooder.socket.pause(); // never reads while flooding
    const n = 20_000;
    const big = Buffer.concat(
      Array.from({ length: n }, (_, i) => encodeFrame({ type: XsType.GET_DOMAIN_PATH, reqId: i + 1, txId: 0, payload: encodeStrings(['1']) })),
    );
    flooder.socket.write(big);
    const other = await connect(h.socket);
    for (let i = 0; i < 20; i++) await other.write(`/meanwhile/${i}`, String(i));
    expect(await other.read('/meanwhile/19')).toBe('19');
    let received = 0;
    flooder.socket.removeAllListeners('data');
    const done = new Promise<void>((resolve) => {
      let buf = Buffer.alloc(0);
      flooder.socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 16 && buf.length >= 16 + buf.readUInt32LE(12)) {
          expect(buf.readUInt32LE(4)).toBe(received + 1); // in order, none lost
          received++;
          buf = buf.subarray(16 + buf.readUInt32LE(12));
        }
        if (received === n) resolve();
      });
    });
    flooder.socket.resume();
    await done;
    expect(received).toBe(n);
  });

  it('disconnects a privileged client that never reads its watch events; a guest’s events are dropped instead', async () => {
    const h = await startInProcessXenstored({ domains: [1], limits: { maxQueuedEventBytes: 64 * 1024 } });
    handles.push(h);
    const dom0Lazy = await connect(h.socket);
    const guestLazy = await connect(h.domainSockets.get(1)!);
    expect((await dom0Lazy.call(XsType.WATCH, ['/local/domain/1/data', 'lazy'])).error).toBeUndefined();
    expect((await guestLazy.call(XsType.WATCH, ['data', 'lazy'])).error).toBeUndefined();
    dom0Lazy.socket.pause();
    guestLazy.socket.pause();
    const writer = h.server.session(0);
    // Distinct paths, so merging identical pending events cannot absorb them.
    const connections = h.server.stats().connections;
    for (let i = 0; i < 40_000 && h.server.stats().connections === connections; i++) {
      writer.write(`/local/domain/1/data/k${i % 500}/${i}`, '');
      if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
    }
    expect(h.server.stats().connections).toBe(connections - 1);
    dom0Lazy.socket.resume();
    await dom0Lazy.waitForClose();
    expect(guestLazy.closed).toBe(false);
    guestLazy.socket.resume();
    expect((await guestLazy.call(XsType.READ, ['data/k0/0'])).error).toBeUndefined();
    writer.close();
  });

  it('merges identical events still waiting for a slow reader', async () => {
    const h = await startInProcessXenstored();
    handles.push(h);
    const slow = await connect(h.socket);
    await slow.call(XsType.WATCH, ['/hot', 'hot']);
    await slow.call(XsType.WATCH, ['/marker', 'marker']);
    await slow.waitForEvents(2);
    slow.events.length = 0;
    slow.socket.pause();
    const writer = h.server.session(0);
    for (let i = 0; i < 50_000; i++) writer.write('/hot', String(i));
    writer.write('/marker', '');
    slow.socket.resume();
    for (let seen = 0; !slow.events.slice(seen).some((e) => e.token === 'marker'); ) {
      seen = slow.events.length;
      await slow.waitForEvents(seen + 1);
    }
    const hot = slow.events.filter((e) => e.token === 'hot').length;
    expect(hot).toBeGreaterThanOrEqual(1);
    expect(hot).toBeLessThan(50_000);
    writer.close();
  });
});
