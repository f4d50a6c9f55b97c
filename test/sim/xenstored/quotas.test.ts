/**
 * Guest quotas with C xenstored 4.17's defaults and error names; none of them bind dom0.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_LIMITS,
  nodeRecordSize,
  type XenstoredServer,
  type XenstoreSession,
} from '../../../src/sim/xenstored/index.js';
import { errorCode, introduceGuest, serverWithDom0 } from './in-process.js';

let server: XenstoredServer;
let dom0: XenstoreSession;
let g: XenstoreSession;

beforeEach(() => {
  ({ server, dom0 } = serverWithDom0());
  g = introduceGuest(server, dom0, 1);
});

describe('guest quotas', () => {
  it('node size: a guest leaf with one permission holds at most 2015 bytes (ENOSPC past it); dom0 is not limited', () => {
    expect(nodeRecordSize({ value: Buffer.alloc(2015), perms: [{ id: 1, bits: 0 }], childBytes: 0 })).toBe(2047);
    expect(errorCode(() => g.write('data/max', 'a'.repeat(2015)))).toBeUndefined();
    expect(errorCode(() => g.write('data/over', 'a'.repeat(2016)))).toBe('ENOSPC');
    expect(errorCode(() => g.write('data/max', 'a'.repeat(2048)))).toBe('ENOSPC');
    expect(g.readText('data/max')).toHaveLength(2015);
    dom0.write('/local/domain/1/data/from-dom0', 'b'.repeat(4000));
    expect(g.readText('data/from-dom0')).toHaveLength(4000);
  });

  it('node size counts the permissions and the children list too', () => {
    g.write('data/p', 'a'.repeat(2000));
    expect(errorCode(() => g.setPermissions('data/p', [
      { domid: 1, perm: 'none' },
      { domid: 0, perm: 'read' },
      { domid: 2, perm: 'read' },
    ]))).toBe('ENOSPC');
    g.write('data/dir', 'a'.repeat(2000));
    expect(errorCode(() => g.write('data/dir/a-long-child-name', ''))).toBe('ENOSPC');
  });

  it(`a guest owns at most ${DEFAULT_LIMITS.nodesPerDomain} nodes (ENOSPC), counting what it already owns`, () => {
    const owned = server.core.store.ownedCount(1);
    expect(owned).toBe(11); // data, drivers, feature, attr, error, control/{shutdown,…}, device/suspend/event-channel
    let created = 0;
    for (let i = 0; ; i++) {
      const c = errorCode(() => g.write(`data/n${i % 50}/k${i}`, ''));
      if (c !== undefined) {
        expect(c).toBe('ENOSPC');
        break;
      }
      created = server.core.store.ownedCount(1) - owned;
    }
    expect(server.core.store.ownedCount(1)).toBe(DEFAULT_LIMITS.nodesPerDomain);
    expect(created).toBe(DEFAULT_LIMITS.nodesPerDomain - owned);
    g.rm('data/n0');
    expect(errorCode(() => g.write('data/again', ''))).toBeUndefined();
    for (let i = 0; i < 1100; i++) dom0.write(`/dom0-has-no-quota/k${i}`, '');
  });

  it('watches per domain: E2BIG once more than the quota exist (xenstored checks with >)', () => {
    let n = 0;
    for (; n < 1000; n++) {
      const c = errorCode(() => g.watch(`data/w${n}`, 't'));
      if (c !== undefined) {
        expect(c).toBe('E2BIG');
        break;
      }
    }
    expect(n).toBe(DEFAULT_LIMITS.watchesPerDomain + 1);
    const other = server.session(1); // the quota is the domain's, not the connection's
    expect(errorCode(() => other.watch('data/x', 't'))).toBe('E2BIG');
    g.unwatch('data/w0', 't');
    other.watch('data/x', 't');
    for (let i = 0; i < 500; i++) dom0.watch(`/w${i}`, 't');
  });

  it('open transactions per connection: ENOSPC past the quota (plus xenstored’s one)', () => {
    let n = 0;
    for (; n < 100; n++) {
      const c = errorCode(() => g.transactionStart());
      if (c !== undefined) {
        expect(c).toBe('ENOSPC');
        break;
      }
    }
    expect(n).toBe(DEFAULT_LIMITS.transactionsPerConnection + 1);
    g.transactionEnd(1, false);
    expect(errorCode(() => g.transactionStart())).toBeUndefined();
    for (let i = 0; i < 50; i++) dom0.transactionStart();
  });

  it('permissions per node: a guest may set at most 5 (ENOSPC)', () => {
    g.write('data/perm', '');
    const five = [1, 2, 3, 4, 5].map((d) => ({ domid: d === 1 ? 1 : d, perm: 'read' as const }));
    expect(errorCode(() => g.setPermissions('data/perm', five))).toBeUndefined();
    expect(errorCode(() => g.setPermissions('data/perm', [...five, { domid: 6, perm: 'read' }]))).toBe('ENOSPC');
  });

  it('path length: at most 2048 bytes below the guest’s home (EINVAL)', () => {
    const seg = 'x'.repeat(99);
    const long = Array.from({ length: 21 }, () => seg).join('/'); // 2099 bytes
    expect(errorCode(() => g.write(`data/${long}`, ''))).toBe('EINVAL');
    const ok = `data/${Array.from({ length: 20 }, () => seg).join('/')}`; // 2004 bytes
    expect(ok.length).toBeLessThanOrEqual(2048);
    expect(errorCode(() => g.write(ok, ''))).toBeUndefined();
    expect(errorCode(() => dom0.write(`/local/domain/1/data/${long}`, ''))).toBeUndefined();
  });

  it('a guest transaction touching more than 1024 nodes fails (ENOSPC, then ENOMEM at commit)', () => {
    for (let i = 0; i < 1100; i++) dom0.write(`/local/domain/1/data/t/k${i}`, '');
    const tx = g.transactionStart();
    let failed: string | undefined;
    for (let i = 0; i < 1100 && !failed; i++) failed = errorCode(() => g.read(`data/t/k${i}`, tx));
    expect(failed).toBe('ENOSPC');
    expect(errorCode(() => g.transactionEnd(tx))).toBe('ENOMEM');
  });

  it('transaction memory: a guest\'s open transactions hold at most transactionBytesPerDomain (ENOMEM), freed when they end; dom0 unlimited', () => {
    const g2 = server.session(1); // a second connection of the same guest shares the quota
    const value = 'v'.repeat(1900);
    let held = 0;
    let refused: string | undefined;
    const txs: [XenstoreSession, number][] = [];
    outer: for (const s of [g, g2]) {
      for (let t = 0; t < DEFAULT_LIMITS.transactionsPerConnection; t++) {
        const tx = s.transactionStart();
        txs.push([s, tx]);
        for (let i = 0; i < 200; i++) {
          refused = errorCode(() => s.write(`data/t${t}/k${i}`, value, tx));
          if (refused !== undefined) break outer;
          held = server.core.transactionBytesOf(1);
        }
      }
    }
    expect(refused).toBe('ENOMEM');
    expect(held).toBeLessThanOrEqual(DEFAULT_LIMITS.transactionBytesPerDomain);
    expect(held).toBeGreaterThan(DEFAULT_LIMITS.transactionBytesPerDomain - 2100);
    for (const [s, tx] of txs) s.transactionEnd(tx, false);
    expect(server.core.transactionBytesOf(1)).toBe(0);
    const tx0 = dom0.transactionStart();
    for (let i = 0; i < 2000; i++) dom0.write(`/dom0-tx/k${i}`, value, tx0);
    dom0.transactionEnd(tx0, false);
  });

  it('transaction memory is given back when the connection goes away', () => {
    const g2 = server.session(1);
    const tx = g2.transactionStart();
    g2.write('data/x', 'y'.repeat(1000), tx);
    expect(server.core.transactionBytesOf(1)).toBeGreaterThan(1000);
    g2.close();
    expect(server.core.transactionBytesOf(1)).toBe(0);
  });
});
