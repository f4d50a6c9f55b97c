/**
 * Store semantics through in-process sessions (the same protocol engine a socket uses): paths,
 * values, creation and removal, permissions, domains.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { encodeStrings, XsType } from '../../../src/wire/index.js';
import type { XenstoredServer, XenstoreSession } from '../../../src/sim/xenstored/index.js';
import { errorCode, introduceGuest, serverWithDom0 } from './in-process.js';

let server: XenstoredServer;
let dom0: XenstoreSession;

beforeEach(() => {
  ({ server, dom0 } = serverWithDom0());
});

function guest(domid: number): XenstoreSession {
  return introduceGuest(server, dom0, domid);
}

describe('nodes and values', () => {
  it('starts with xenstored’s initial tree plus dom0’s home', () => {
    expect(dom0.directory('/')).toEqual(['tool', 'local']);
    expect(dom0.directory('/tool')).toEqual(['xenstored']);
    expect(dom0.readText('/local/domain/0/name')).toBe('Domain-0');
  });

  it('WRITE creates missing parents with empty values and lists children in creation order', () => {
    dom0.write('/a/b/c', 'v');
    dom0.write('/a/a', 'w');
    dom0.write('/a/z', 'x');
    expect(dom0.readText('/a/b')).toBe('');
    expect(dom0.readText('/a/b/c')).toBe('v');
    expect(dom0.directory('/a')).toEqual(['b', 'a', 'z']);
    expect(dom0.directory('/a/b/c')).toEqual([]);
  });

  it('keeps binary values exactly, NULs and high bytes included', () => {
    const value = Buffer.from([0, 10, 0, 255, 13, 0x7f]);
    dom0.write('/bin', value);
    expect(Buffer.compare(dom0.read('/bin'), value)).toBe(0);
    dom0.write('/empty', '');
    expect(dom0.read('/empty').length).toBe(0);
  });

  it('READ of a missing node is ENOENT; MKDIR of an existing node changes nothing', () => {
    expect(errorCode(() => dom0.read('/nope'))).toBe('ENOENT');
    dom0.write('/m', 'keep');
    dom0.mkdir('/m');
    expect(dom0.readText('/m')).toBe('keep');
    dom0.mkdir('/m/n/o');
    expect(dom0.directory('/m/n')).toEqual(['o']);
  });

  it('RM removes a whole subtree; a missing node with an existing parent is fine; else ENOENT', () => {
    dom0.write('/r/a/b', '1');
    dom0.write('/r/a/c', '2');
    dom0.write('/r/keep', '3');
    dom0.rm('/r/a');
    expect(dom0.directory('/r')).toEqual(['keep']);
    expect(errorCode(() => dom0.read('/r/a/b'))).toBe('ENOENT');
    expect(errorCode(() => dom0.rm('/r/a'))).toBeUndefined();
    expect(errorCode(() => dom0.rm('/r/a/b'))).toBe('ENOENT');
    expect(errorCode(() => dom0.rm('/'))).toBe('EINVAL');
  });

  it('rejects malformed paths with EINVAL', () => {
    for (const bad of ['/a//b', '/a/', '/a b', '/a.b', '/ü', '@foo', '', '/a\nb', `/${'x'.repeat(3072)}`]) {
      expect(errorCode(() => dom0.write(bad, 'x')), JSON.stringify(bad)).toBe('EINVAL');
    }
    expect(errorCode(() => dom0.write('/ok-_@AZ09', 'x'))).toBeUndefined();
  });

  it('resolves relative paths under the caller’s home', () => {
    dom0.write('rel/x', '0');
    expect(dom0.readText('/local/domain/0/rel/x')).toBe('0');
    const g = guest(3);
    g.write('data/y', '3');
    expect(dom0.readText('/local/domain/3/data/y')).toBe('3');
    expect(g.readText('/local/domain/3/data/y')).toBe('3');
  });

  it('answers GET_DOMAIN_PATH for any domid, like xenstored', () => {
    expect(dom0.getDomainPath(7)).toBe('/local/domain/7');
    const g = guest(4);
    expect(g.getDomainPath(9)).toBe('/local/domain/9');
  });

  it('refuses replies over 4096 bytes with E2BIG, and DIRECTORY_PART pages through them', () => {
    const names: string[] = [];
    for (let i = 0; i < 400; i++) {
      const name = `child-with-a-long-name-${i}`;
      names.push(name);
      dom0.write(`/big/${name}`, '');
    }
    expect(errorCode(() => dom0.directory('/big'))).toBe('E2BIG');
    const seen: string[] = [];
    let offset = 0;
    let gen: string | undefined;
    for (;;) {
      const r = dom0.raw(XsType.DIRECTORY_PART, encodeStrings(['/big', String(offset)]));
      expect(r.type).toBe(XsType.DIRECTORY_PART);
      expect(r.payload.length).toBeLessThanOrEqual(4096);
      const parts = r.payload.toString('latin1').split('\0');
      gen ??= parts[0];
      expect(parts[0]).toBe(gen);
      const chunk = parts.slice(1, -1);
      const last = chunk.length > 0 && chunk[chunk.length - 1] === '';
      const got = last ? chunk.slice(0, -1) : chunk;
      seen.push(...got);
      offset += got.reduce((n, s) => n + s.length + 1, 0);
      if (last || got.length === 0) break;
    }
    expect(seen).toEqual(names);
  });

  it('answers unknown and unimplemented message types with ENOSYS', () => {
    for (const type of [20, 23, 999, XsType.WATCH_EVENT, XsType.ERROR, XsType.CONTROL, XsType.SET_TARGET, XsType.RESUME]) {
      const r = dom0.raw(type, encodeStrings(['x']));
      expect(r.type, String(type)).toBe(XsType.ERROR);
      expect(r.payload.toString('latin1'), String(type)).toBe('ENOSYS\0');
    }
  });

  it('answers malformed payloads with EINVAL', () => {
    const cases: Array<[number, Buffer]> = [
      [XsType.READ, Buffer.from('/a')],
      [XsType.READ, Buffer.from('/a\0/b\0')],
      [XsType.WRITE, Buffer.from('/a')],
      [XsType.WATCH, Buffer.from('/a\0')],
      [XsType.SET_PERMS, Buffer.from('/a\0')],
      [XsType.DIRECTORY_PART, Buffer.from('/a\0')],
      [XsType.TRANSACTION_END, Buffer.from('X\0')],
    ];
    for (const [type, payload] of cases) {
      const r = dom0.raw(type, payload);
      expect(r.payload.toString('latin1'), `${type} ${JSON.stringify(payload.toString())}`).toBe('EINVAL\0');
    }
  });
});

describe('permissions', () => {
  it('new nodes inherit their parent’s permissions; a guest owns what it creates', () => {
    const g = guest(5);
    dom0.mkdir('/p');
    dom0.setPermissions('/p', [
      { domid: 0, perm: 'read' },
      { domid: 5, perm: 'both' },
    ]);
    dom0.write('/p/by-dom0', 'x');
    expect(dom0.getPermissions('/p/by-dom0')).toEqual([
      { domid: 0, perm: 'read' },
      { domid: 5, perm: 'both' },
    ]);
    g.write('/p/by-guest/leaf', 'y');
    expect(dom0.getPermissions('/p/by-guest/leaf')).toEqual([
      { domid: 5, perm: 'read' },
      { domid: 5, perm: 'both' },
    ]);
    expect(dom0.getPermissions('/local/domain/5/data')).toEqual([{ domid: 5, perm: 'none' }]);
  });

  it('the first entry is the owner and the default; listed domains get their own entry', () => {
    const g6 = guest(6);
    const g7 = guest(7);
    dom0.write('/q', 'secret');
    dom0.setPermissions('/q', [
      { domid: 0, perm: 'read' },
      { domid: 7, perm: 'none' },
    ]);
    expect(g6.readText('/q')).toBe('secret');
    expect(errorCode(() => g6.write('/q', 'x'))).toBe('EACCES');
    expect(errorCode(() => g7.read('/q'))).toBe('EACCES');
  });

  it('a guest reads and writes its own writable keys, and nothing of dom0 or other guests', () => {
    const g = guest(8);
    guest(9);
    dom0.write('/local/domain/9/data/x', 'nine');
    dom0.write('/local/domain/8/memory/target', '524288');
    g.write('data/report', 'hello');
    expect(g.readText('memory/target')).toBe('524288');
    expect(errorCode(() => g.write('memory/target', '1'))).toBe('EACCES');
    expect(errorCode(() => g.write('newkey', '1'))).toBe('EACCES');
    expect(errorCode(() => g.read('/local/domain/0/name'))).toBe('EACCES');
    expect(errorCode(() => g.read('/local/domain/9/data/x'))).toBe('EACCES');
    expect(errorCode(() => g.write('/local/domain/9/data/x', 'mine'))).toBe('EACCES');
    expect(errorCode(() => g.directory('/local/domain'))).toBe('EACCES');
  });

  it('hides whether a node exists below an unreadable parent (EACCES, not ENOENT)', () => {
    const g = guest(10);
    expect(errorCode(() => g.read('/local/domain/0/no-such-node'))).toBe('EACCES');
    expect(errorCode(() => g.read('data/no-such-node'))).toBe('ENOENT');
  });

  it('only the owner (or dom0) may set permissions, and a guest cannot give a node away', () => {
    const g = guest(11);
    g.write('data/mine', 'x');
    g.setPermissions('data/mine', [
      { domid: 11, perm: 'none' },
      { domid: 0, perm: 'read' },
    ]);
    expect(dom0.getPermissions('/local/domain/11/data/mine')).toEqual([
      { domid: 11, perm: 'none' },
      { domid: 0, perm: 'read' },
    ]);
    expect(errorCode(() => g.setPermissions('data/mine', [{ domid: 0, perm: 'both' }]))).toBe('EPERM');
    expect(errorCode(() => g.setPermissions('memory', [{ domid: 11, perm: 'both' }]))).toBe('EACCES');
    const r = g.raw(XsType.SET_PERMS, encodeStrings(['data/mine', 'x11']));
    expect(r.payload.toString('latin1')).toBe('EINVAL\0');
  });
});

describe('domains', () => {
  it('IS_DOMAIN_INTRODUCED follows INTRODUCE and RELEASE; dom0 and DOMID_SELF are always introduced', () => {
    expect(dom0.isDomainIntroduced(0)).toBe(true);
    expect(dom0.isDomainIntroduced(0x7ff0)).toBe(true);
    expect(dom0.isDomainIntroduced(12)).toBe(false);
    dom0.introduceDomain(12);
    expect(dom0.isDomainIntroduced(12)).toBe(true);
    dom0.releaseDomain(12);
    expect(dom0.isDomainIntroduced(12)).toBe(false);
    expect(errorCode(() => dom0.releaseDomain(12))).toBe('ENOENT');
    expect(errorCode(() => dom0.releaseDomain(0))).toBe('EINVAL');
    expect(errorCode(() => dom0.introduceDomain(13, 0, 0))).toBe('EINVAL');
  });

  it('refuses the privileged requests from a guest with EACCES', () => {
    const g = guest(14);
    expect(errorCode(() => g.introduceDomain(15))).toBe('EACCES');
    expect(errorCode(() => g.releaseDomain(14))).toBe('EACCES');
    expect(errorCode(() => g.isDomainIntroduced(14))).toBe('EACCES');
    const r = g.raw(XsType.CONTROL, encodeStrings(['help']));
    expect(r.payload.toString('latin1')).toBe('EACCES\0');
  });

  it('RELEASE drops the domain’s connections and removes the nodes it owns', () => {
    const g = guest(16);
    g.write('data/report', 'x');
    dom0.write('/elsewhere', '');
    dom0.setPermissions('/elsewhere', [{ domid: 16, perm: 'none' }]);
    dom0.write('/elsewhere/child', 'owned by 16 too');
    dom0.releaseDomain(16);
    expect(g.closed).toBe(true);
    expect(errorCode(() => g.read('data/report'))).toBe('EIO');
    expect(dom0.exists('/local/domain/16/data')).toBe(false);
    expect(dom0.exists('/local/domain/16/memory')).toBe(true); // dom0's, stays until the toolstack removes it
    expect(dom0.exists('/elsewhere')).toBe(false);
  });
});

describe('in-process sessions', () => {
  it('hand out copies: changing a returned value does not change the store', () => {
    dom0.write('/copy', 'abc');
    dom0.read('/copy').fill(0);
    dom0.raw(XsType.READ, encodeStrings(['/copy'])).payload.fill(0);
    expect(dom0.readText('/copy')).toBe('abc');
  });
});
