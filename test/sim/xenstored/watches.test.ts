/** Watch semantics through in-process sessions. */
import { beforeEach, describe, expect, it } from 'vitest';
import type { XenstoredServer, XenstoreSession } from '../../../src/sim/xenstored/index.js';
import { errorCode, introduceGuest, serverWithDom0 } from './in-process.js';

let server: XenstoredServer;
let dom0: XenstoreSession;
let watcher: XenstoreSession;

beforeEach(() => {
  ({ server, dom0 } = serverWithDom0());
  watcher = server.session(0);
});

function guest(domid: number): XenstoreSession {
  return introduceGuest(server, dom0, domid);
}

function paths(s: XenstoreSession): string[] {
  return s.takeEvents().map((e) => `${e.path} ${e.token}`);
}

describe('watches', () => {
  it('fire once on registration, then for the path and everything below it', () => {
    watcher.watch('/w', 'tok');
    expect(paths(watcher)).toEqual(['/w tok']);
    dom0.write('/w', '1');
    dom0.write('/w/a/b', '2');
    dom0.write('/wx', 'not below /w');
    dom0.write('/other', '3');
    expect(paths(watcher)).toEqual(['/w tok', '/w/a/b tok']);
  });

  it('a watch on / sees everything; only the written path fires, not created parents', () => {
    watcher.watch('/', 'all');
    watcher.takeEvents();
    dom0.write('/x/y/z', '1');
    expect(paths(watcher)).toEqual(['/x/y/z all']);
  });

  it('MKDIR of an existing node fires nothing; SET_PERMS fires', () => {
    dom0.write('/m', '');
    watcher.watch('/m', 't');
    watcher.takeEvents();
    dom0.mkdir('/m');
    expect(paths(watcher)).toEqual([]);
    dom0.setPermissions('/m', [{ domid: 0, perm: 'read' }]);
    expect(paths(watcher)).toEqual(['/m t']);
  });

  it('RM fires on the removed root, and on each removed node that has its own watch', () => {
    dom0.write('/r/a/b/c', '1');
    dom0.write('/r/a/d', '1');
    watcher.watch('/r', 'top');
    watcher.watch('/r/a/b/c', 'deep');
    watcher.watch('/r/a/b/gone', 'never-existed');
    watcher.takeEvents();
    dom0.rm('/r/a');
    expect(paths(watcher).sort()).toEqual(['/r/a top', '/r/a/b/c deep']);
  });

  it('duplicate (path, token) is EEXIST; another token is a second watch; UNWATCH of an unknown watch is ENOENT', () => {
    watcher.watch('/d', 'a');
    expect(errorCode(() => watcher.watch('/d', 'a'))).toBe('EEXIST');
    watcher.watch('/d', 'b');
    watcher.takeEvents();
    dom0.write('/d', '1');
    expect(paths(watcher).sort()).toEqual(['/d a', '/d b']);
    watcher.unwatch('/d', 'a');
    expect(errorCode(() => watcher.unwatch('/d', 'a'))).toBe('ENOENT');
    dom0.write('/d', '2');
    expect(paths(watcher)).toEqual(['/d b']);
  });

  it('a relative watch reports relative paths', () => {
    const g = guest(3);
    g.watch('memory/target', 'target');
    expect(paths(g)).toEqual(['memory/target target']);
    dom0.write('/local/domain/3/memory/target', '1024');
    expect(paths(g)).toEqual(['memory/target target']);
    g.watch('/local/domain/3/data', 'abs');
    g.takeEvents();
    g.write('data/x', '1');
    expect(paths(g)).toEqual(['/local/domain/3/data/x abs']);
  });

  it('a guest is not told about changes to nodes it cannot read', () => {
    const g = guest(4);
    g.watch('/local/domain/0', 'spy');
    expect(paths(g)).toEqual(['/local/domain/0 spy']); // the registration event is unconditional
    dom0.write('/local/domain/0/secret', 'x');
    expect(paths(g)).toEqual([]);
    dom0.write('/public', 'x');
    dom0.setPermissions('/public', [{ domid: 0, perm: 'read' }]);
    g.watch('/public', 'pub');
    g.takeEvents();
    dom0.write('/public', 'y');
    expect(paths(g)).toEqual(['/public pub']);
  });

  it('@introduceDomain and @releaseDomain fire on exact watches, for privileged watchers only by default', () => {
    watcher.watch('@introduceDomain', 'in');
    watcher.watch('@releaseDomain', 'out');
    watcher.watch('/', 'root');
    const g = guest(5);
    g.watch('@releaseDomain', 'guest-out');
    watcher.takeEvents();
    g.takeEvents();
    dom0.introduceDomain(6);
    dom0.releaseDomain(6);
    expect(paths(watcher)).toEqual(['@introduceDomain in', '@releaseDomain out']);
    expect(paths(g)).toEqual([]);
    dom0.setPermissions('@releaseDomain', [
      { domid: 0, perm: 'none' },
      { domid: 5, perm: 'read' },
    ]);
    dom0.introduceDomain(7);
    dom0.releaseDomain(7);
    expect(paths(g)).toEqual(['@releaseDomain guest-out']);
  });

  it('introducing an already introduced domain resets its watches and fires nothing', () => {
    watcher.watch('@introduceDomain', 'in');
    const g = guest(8);
    g.watch('data', 'd');
    watcher.takeEvents();
    dom0.introduceDomain(8);
    expect(paths(watcher)).toEqual([]);
    g.takeEvents();
    g.write('data/x', '1');
    expect(paths(g)).toEqual([]);
  });

  it('RESET_WATCHES removes all of the caller’s watches', () => {
    watcher.watch('/a', '1');
    watcher.watch('/b', '2');
    watcher.resetWatches();
    watcher.takeEvents();
    dom0.write('/a', 'x');
    expect(paths(watcher)).toEqual([]);
    expect(errorCode(() => watcher.unwatch('/a', '1'))).toBe('ENOENT');
  });

  it('a closed session’s watches are gone', () => {
    watcher.watch('/c', 't');
    expect(server.stats().watches).toBe(1);
    watcher.close();
    expect(server.stats().watches).toBe(0);
  });

  it('delivers events to a listener in order, after the change', async () => {
    const got: string[] = [];
    watcher.onWatchEvent((e) => got.push(e.path));
    watcher.watch('/l', 't');
    dom0.write('/l/1', '');
    dom0.write('/l/2', '');
    expect(got).toEqual([]);
    await Promise.resolve();
    expect(got).toEqual(['/l', '/l/1', '/l/2']);
  });
});
