/**
 * The real xenstore-* tools (xenstore-utils, through the real libxenstore) against
 * `xenballoonctl xenstored`: dom0 on its socket, and guests on their domain sockets refused
 * where a real guest is refused.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runXenstoreTool, startXenstored, type XenstoredProcess } from '../../helpers/xenstored.js';

let xsd: XenstoredProcess;
let dom0: (tool: string, ...args: string[]) => ReturnType<typeof runXenstoreTool>;
let guest1: typeof dom0;

beforeAll(async () => {
  xsd = await startXenstored({ domains: [1, 2] });
  dom0 = (tool, ...args) => runXenstoreTool(xsd.socket, `xenstore-${tool}`, args);
  guest1 = (tool, ...args) => runXenstoreTool(xsd.domainSockets.get(1)!, `xenstore-${tool}`, args);
});

afterAll(async () => {
  await xsd?.stop();
});

async function ok(p: ReturnType<typeof runXenstoreTool>): Promise<string> {
  const r = await p;
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

describe('dom0 with the xenstore tools', () => {
  it('writes and reads plain values, lists and tests keys, removes them', async () => {
    await ok(dom0('write', '/t/a', 'hello', '/t/b/c', 'world'));
    expect(await ok(dom0('read', '/t/a', '/t/b/c'))).toBe('hello\nworld\n');
    expect(await ok(dom0('list', '/t'))).toBe('a\nb\n');
    expect(await ok(dom0('ls', '-f', '/t'))).toBe('/t/a = "hello"\n/t/b = ""\n/t/b/c = "world"\n');
    expect((await dom0('exists', '/t/b/c')).code).toBe(0);
    await ok(dom0('rm', '/t/b'));
    expect((await dom0('exists', '/t/b/c')).code).not.toBe(0);
    const missing = await dom0('read', '/t/b/c');
    expect(missing.code).not.toBe(0);
  });

  it('keeps values with newlines and binary bytes: escaped by default, raw with -R', async () => {
    // xenstore-write expands C escapes unless -R; xenstore-read escapes unless -R.
    await ok(dom0('write', '/bin/esc', 'line1\\nline2\\x01\\xff'));
    expect(await ok(dom0('read', '/bin/esc'))).toBe('line1\\nline2\\001\\xff\n');
    const raw = await ok(dom0('read', '-R', '/bin/esc'));
    expect(Buffer.from(raw, 'latin1')).toEqual(Buffer.from('line1\nline2\x01\xff', 'latin1'));
    await ok(dom0('write', '-R', '/bin/raw', 'a\\nb'));
    expect(await ok(dom0('read', '-R', '/bin/raw'))).toBe('a\\nb');
  });

  it('sets and shows permissions (xenstore-chmod, xenstore-ls -p)', async () => {
    await ok(dom0('write', '/p/node', 'v'));
    await ok(dom0('chmod', '/p/node', 'n0', 'r1', 'b2'));
    expect(await ok(dom0('ls', '-fp', '/p'))).toMatch(/^\/p\/node = "v" +\(n0,r1,b2\)$/m);
    await ok(dom0('chmod', '-r', '/p', 'b0'));
    expect(await ok(dom0('ls', '-fp', '/p'))).toMatch(/^\/p\/node = "v" +\(b0\)$/m);
  });

  it('xenstore-watch reports the watched node and writes below it', async () => {
    await ok(dom0('write', '/w/base', ''));
    const child = spawn('xenstore-watch', ['-n', '4', '/w'], { env: { ...process.env, XENSTORED_PATH: xsd.socket } });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    // 'close', not 'exit': the last line may still be in the pipe when the process has exited.
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    // Wait for the registration event, so the writes below cannot race the watch.
    while (!out.includes('/w\n')) await new Promise((r) => setTimeout(r, 20));
    await ok(dom0('write', '/w/a/b', '1'));
    await ok(dom0('write', '/unrelated', '1'));
    await ok(guest1('write', 'data/not-watched', '1'));
    await ok(dom0('write', '/w/base', '2'));
    await ok(dom0('rm', '/w/a'));
    expect(await exited).toBe(0);
    expect(out.trim().split('\n')).toEqual(['/w', '/w/a/b', '/w/base', '/w/a']);
  });
});

describe('a guest on its domain socket', () => {
  it('reads its own home and writes its guest-writable keys, with relative paths', async () => {
    await ok(dom0('write', '/local/domain/1/memory/target', '524288'));
    expect(await ok(guest1('read', 'memory/target'))).toBe('524288\n');
    await ok(guest1('write', 'data/xenballoon/report', 'v1 seq=1'));
    expect(await ok(dom0('read', '/local/domain/1/data/xenballoon/report'))).toBe('v1 seq=1\n');
    expect(await ok(dom0('ls', '-fp', '/local/domain/1/data'))).toMatch(/report = "v1 seq=1" +\(n1\)/);
  });

  it('is refused memory/target, new top-level keys, other guests’ keys and dom0’s subtree', async () => {
    await ok(dom0('write', '/local/domain/2/data/x', 'two'));
    for (const [tool, ...args] of [
      ['write', 'memory/target', '1'],
      ['write', '/local/domain/1/memory/target', '1'],
      ['write', 'newkey', '1'],
      ['write', '/local/domain/2/data/x', 'mine'],
      ['read', '/local/domain/2/data/x'],
      ['read', '/local/domain/0/name'],
      ['ls', '/local/domain/0'],
      ['rm', '/local/domain/2/data'],
      ['chmod', 'memory', 'b1'],
    ] as const) {
      const r = await guest1(tool, ...args);
      expect(r.code, `${tool} ${args.join(' ')}`).not.toBe(0);
    }
    expect(await ok(dom0('read', '/local/domain/1/memory/target'))).toBe('524288\n');
    expect(await ok(dom0('read', '/local/domain/2/data/x'))).toBe('two\n');
  });

  it('is refused a value its node cannot hold (2048-byte node quota), dom0 is not', async () => {
    const r = await guest1('write', 'data/big', 'x'.repeat(2100));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/could not write/);
    await ok(guest1('write', 'data/fits', 'x'.repeat(2000)));
    await ok(dom0('write', '/local/domain/1/data/dom0-big', 'y'.repeat(3000)));
  });
});
