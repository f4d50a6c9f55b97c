import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlClient, ControlRequestError, controlRequest } from '../../src/daemon/control-client.js';
import type { Request, Response } from '../../src/daemon/control-protocol.js';
import {
  ControlServer, ControlServerError, errorResponse, MAX_CONNECTIONS, MAX_PENDING_PER_CONNECTION, MAX_UNREAD_REPLY_BYTES,
} from '../../src/daemon/control-server.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function tmp(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'xbd-ctl-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function rawExchange(path: string, lines: string[], expect: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      const got = buf.split('\n').filter(Boolean);
      if (got.length >= expect) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
    s.on('connect', () => s.write(lines.join('')));
  });
}

describe('control socket', () => {
  it('answers requests in order on one connection, refuses garbage, and is root-only (0600)', async () => {
    const dir = await tmp();
    const path = join(dir, 'run', 'control.sock');
    const handler = async (req: Request): Promise<Response> => {
      if (req.op === 'explain') {
        await new Promise((r) => setTimeout(r, 50)); // slower than the next request
        return errorResponse('not-found', `no domain ${req.domain}`);
      }
      return { ok: true, version: 1, pid: 42 };
    };
    const server = await ControlServer.listen(path, handler, () => undefined);
    cleanups.push(() => server.close());
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const answers = await rawExchange(path, [
      '{"op":"explain","domain":"x"}\n', 'not json\n', '{"op":"reserve","kib":-1}\n', '{"op":"ping"}\n',
    ], 4);
    expect(answers.map((a) => JSON.parse(a) as Response)).toEqual([
      { ok: false, code: 'not-found', error: 'no domain x' },
      { ok: false, code: 'bad-request', error: 'request is not valid JSON' },
      expect.objectContaining({ ok: false, code: 'bad-request' }),
      { ok: true, version: 1, pid: 42 },
    ]);
    expect(await controlRequest(path, { op: 'ping' })).toEqual({ ok: true, version: 1, pid: 42 });
    await expect(controlRequest(path, { op: 'explain', domain: 'y' })).rejects.toBeInstanceOf(ControlRequestError);
  });

  it('cancels a waiting request when its client goes away', async () => {
    const dir = await tmp();
    const path = join(dir, 'control.sock');
    let aborted = false;
    const server = await ControlServer.listen(path, (_req, signal) => new Promise<Response>((resolve) => {
      signal.addEventListener('abort', () => {
        aborted = true;
        resolve(errorResponse('cancelled', 'gone'));
      });
    }), () => undefined);
    cleanups.push(() => server.close());
    const c = await ControlClient.connect(path);
    const pending = c.request({ op: 'reserve', kib: 1024 }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    c.close();
    await pending;
    for (let i = 0; i < 100 && !aborted; i++) await new Promise((r) => setTimeout(r, 10));
    expect(aborted).toBe(true);
  });

  it('replaces a stale socket file but refuses to start beside a live daemon', async () => {
    const dir = await tmp();
    const path = join(dir, 'control.sock');
    const first = await ControlServer.listen(path, async () => ({ ok: true, version: 1, pid: 1 }), () => undefined);
    await expect(ControlServer.listen(path, async () => ({ ok: true, version: 1, pid: 2 }), () => undefined))
      .rejects.toBeInstanceOf(ControlServerError);
    // A daemon killed with -9 leaves its socket file behind: the next one takes its place.
    const stalePath = join(dir, 'stale.sock');
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stalePath)}, () => console.log('up'))`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise((r) => child.stdout.once('data', r));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect((await stat(stalePath)).isSocket()).toBe(true);
    const second = await ControlServer.listen(stalePath, async () => ({ ok: true, version: 1, pid: 3 }), () => undefined);
    expect(await controlRequest(stalePath, { op: 'ping' })).toMatchObject({ pid: 3 });
    await second.close();
    await first.close();
    // Not a socket: refused with a clear message rather than deleted.
    const file = join(dir, 'file');
    await writeFile(file, 'x');
    await expect(ControlServer.listen(file, async () => ({ ok: true, version: 1, pid: 4 }), () => undefined))
      .rejects.toThrow(/not a socket/);
  });

  it('stops reading a client that pipelines requests and never reads the answers; serves it once it reads', async () => {
    const dir = await tmp();
    const path = join(dir, 'control.sock');
    let answered = 0;
    const big = 'x'.repeat(64 * 1024); // a status answer of a big host
    const handler = async (req: Request): Promise<Response> => {
      if (req.op === 'ping') return { ok: true, version: 1, pid: 7 };
      answered++;
      return errorResponse('not-found', big);
    };
    const server = await ControlServer.listen(path, handler, () => undefined);
    cleanups.push(() => server.close());
    const total = 2000;
    const s = net.connect(path);
    s.pause(); // never reads
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write('{"op":"status"}\n'.repeat(total));
    await new Promise((r) => setTimeout(r, 500));
    // What the server did for it is bounded by what a client may leave unread, not by what it sent.
    const bound = MAX_PENDING_PER_CONNECTION + Math.ceil(MAX_UNREAD_REPLY_BYTES / big.length) + 64;
    expect(answered).toBeLessThan(bound);
    // The server still answers others meanwhile.
    expect(await controlRequest(path, { op: 'ping' })).toEqual({ ok: true, version: 1, pid: 7 });
    // Once the client reads, every request is answered, in order.
    let lines = 0;
    await new Promise<void>((resolve) => {
      let rest = '';
      s.on('data', (d: Buffer) => {
        const parts = (rest + d.toString()).split('\n');
        rest = parts.pop() ?? '';
        lines += parts.length;
        if (lines >= total) resolve();
      });
      s.resume();
    });
    s.destroy();
    expect(lines).toBe(total);
  });

  it('caps connections: idle ones make room for new ones, and a busy one is never dropped', async () => {
    const dir = await tmp();
    const path = join(dir, 'control.sock');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const server = await ControlServer.listen(path, async (req) => {
      if (req.op === 'reserve') await gate; // a waiting request keeps its connection busy
      return { ok: true, version: 1, pid: 1 };
    }, () => undefined);
    cleanups.push(() => server.close());
    const busy = net.connect(path);
    let busyAnswer = '';
    busy.on('data', (d) => (busyAnswer += d.toString()));
    await new Promise<void>((r) => busy.once('connect', () => r()));
    busy.write('{"op":"reserve","kib":1}\n');
    await new Promise((r) => setTimeout(r, 50));
    const socks: net.Socket[] = [];
    cleanups.push(async () => socks.forEach((x) => x.destroy()));
    for (let i = 0; i < MAX_CONNECTIONS + 20; i++) {
      const c = net.connect(path);
      c.on('error', () => undefined);
      socks.push(c);
      await new Promise<void>((r) => c.once('connect', () => r()));
    }
    await new Promise((r) => setTimeout(r, 200));
    // Never more than the cap open; the oldest idle ones went; the operator still gets in.
    expect(socks.filter((c) => !c.destroyed && !c.readableEnded).length).toBeLessThanOrEqual(MAX_CONNECTIONS);
    expect(await controlRequest(path, { op: 'ping' })).toEqual({ ok: true, version: 1, pid: 1 });
    release();
    await new Promise((r) => setTimeout(r, 100));
    expect(busyAnswer).toContain('"ok":true');
    busy.destroy();
  });
});
