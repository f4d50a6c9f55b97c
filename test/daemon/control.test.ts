import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlClient, ControlRequestError, controlRequest } from '../../src/daemon/control-client.js';
import type { Request, Response } from '../../src/daemon/control-protocol.js';
import { ControlServer, ControlServerError, errorResponse } from '../../src/daemon/control-server.js';

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
});
