/** `xenballoonctl xenstored`: start-up errors as one line, stale sockets, clean shutdown. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { XsType } from '../../src/wire/index.js';
import { XsTestClient } from '../helpers/xs-client.js';
import { ctlPath, runXenstoreTool, startXenstored, waitForXenstored } from '../helpers/xenstored.js';

const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'xsc-'));
  dirs.push(d);
  return d;
}

afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

function ctl(...args: string[]) {
  return spawnSync(process.execPath, [ctlPath, 'xenstored', ...args], { encoding: 'utf8', timeout: 30_000 });
}

function expectOneLineError(r: ReturnType<typeof ctl>, status: number, pattern: RegExp) {
  expect(r.status).toBe(status);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/at .+:\d+:\d+/); // no stack trace
}

describe('xenballoonctl xenstored', () => {
  it('refuses bad arguments with one line and exit 2', () => {
    expectOneLineError(ctl(), 2, /missing --socket/);
    expectOneLineError(ctl('--socket', '/tmp/x.sock', '--domain-socket', 'nope'), 2, /expected DOMID=PATH/);
    expectOneLineError(ctl('--socket', '/tmp/x.sock', '--domain-socket', '0=/tmp/y'), 2, /DOMID must be between 1 and 32751/);
    expectOneLineError(ctl('--socket', '/tmp/x.sock', '--bogus'), 2, /Unknown option '--bogus'/);
    expectOneLineError(ctl('--socket', '/tmp/x.sock', '--domain-socket', '3=/tmp/a', '--domain-socket', '3=/tmp/b'), 2, /domain 3 given twice/);
  });

  it('explains socket paths it cannot use', async () => {
    const d = await tempDir();
    expectOneLineError(ctl('--socket', join(d, 'x'.repeat(120))), 1, /at most 107/);
    expectOneLineError(ctl('--socket', join(d, 'no-such-dir', 's.sock')), 1, /directory .*no-such-dir does not exist/);
    await writeFile(join(d, 'file'), 'not a socket');
    expectOneLineError(ctl('--socket', join(d, 'file')), 1, /exists and is not a socket/);
  });

  it('refuses a socket a live server answers on, and replaces a stale one', async () => {
    const xsd = await startXenstored();
    try {
      expectOneLineError(ctl('--socket', xsd.socket), 1, /address in use/);
    } finally {
      await xsd.stop();
    }
    // A stale socket: its server was killed before it could remove it.
    const d = await tempDir();
    const stale = join(d, 'stale.sock');
    const killer = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(killer.signal).toBe('SIGKILL');
    expect(existsSync(stale)).toBe(true);
    const child = spawn(process.execPath, [ctlPath, 'xenstored', '--socket', stale], { stdio: 'ignore' });
    try {
      await waitForXenstored(stale, 30_000);
      const r = await runXenstoreTool(stale, 'xenstore-read', ['/local/domain/0/name']);
      expect(r.stdout).toBe('Domain-0\n');
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`exits 0 on ${signal} and removes its sockets`, async () => {
      const xsd = await startXenstored({ domains: [4] });
      expect(xsd.stderr()).toMatch(/"msg":"xenstored ready"/);
      xsd.child.kill(signal);
      expect(await xsd.exited).toBe(0);
      expect(existsSync(xsd.socket)).toBe(false);
      expect(existsSync(xsd.domainSockets.get(4)!)).toBe(false);
      expect(xsd.stderr()).toMatch(/"msg":"stopping"/);
      await xsd.stop();
    });
  }

  it('gives each domain socket a libxl-like home and introduces the domain', async () => {
    const xsd = await startXenstored({ domains: [5] });
    try {
      const ls = await runXenstoreTool(xsd.socket, 'xenstore-ls', ['-fp', '/local/domain/5']);
      expect(ls.stdout).toMatch(/^\/local\/domain\/5\/domid = "5" +\(n0,r5\)$/m);
      expect(ls.stdout).toMatch(/^\/local\/domain\/5\/memory = "" +\(n0,r5\)$/m);
      expect(ls.stdout).toMatch(/^\/local\/domain\/5\/data = "" +\(n5\)$/m);
      expect(ls.stdout).toMatch(/^\/local\/domain\/5\/control\/shutdown = "" +\(n5\)$/m);
      const perms = await runXenstoreTool(xsd.socket, 'xenstore-ls', ['-p', '/local/domain']);
      expect(perms.stdout).toMatch(/^5 = ""[ .]+\(n0,r5\)$/m);
      const client = await XsTestClient.connect(xsd.socket);
      const introduced = await client.call(XsType.IS_DOMAIN_INTRODUCED, ['5']);
      const unknown = await client.call(XsType.IS_DOMAIN_INTRODUCED, ['6']);
      client.close();
      expect(introduced.payload.toString('latin1')).toBe('T\0');
      expect(unknown.payload.toString('latin1')).toBe('F\0');
    } finally {
      await xsd.stop();
    }
  });
});
