/** Transactions: isolation, conflicts (EAGAIN), events only on commit, ids, serializability. */
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { encodeStrings, XsType } from '../../../src/wire/index.js';
import { XenstoredServer, XsRequestError, type XenstoreSession } from '../../../src/sim/xenstored/index.js';
import { errorCode } from './in-process.js';

let server: XenstoredServer;
let a: XenstoreSession;
let b: XenstoreSession;

beforeEach(() => {
  server = new XenstoredServer();
  a = server.session(0);
  b = server.session(0);
});

describe('transactions', () => {
  it('hide their writes until commit and read a snapshot of what they touched', () => {
    a.write('/t/x', 'old');
    const tx = a.transactionStart();
    expect(a.readText('/t/x', tx)).toBe('old');
    a.write('/t/y', 'new', tx);
    expect(errorCode(() => b.read('/t/y'))).toBe('ENOENT');
    expect(a.readText('/t/y', tx)).toBe('new');
    a.transactionEnd(tx);
    expect(b.readText('/t/y')).toBe('new');
  });

  it('fail with EAGAIN when a node they read changed meanwhile, and change nothing', () => {
    a.write('/c/x', '1');
    const tx = a.transactionStart();
    expect(a.readText('/c/x', tx)).toBe('1');
    b.write('/c/x', '2');
    expect(a.readText('/c/x', tx)).toBe('1'); // still the snapshot
    a.write('/c/y', 'from-tx', tx);
    expect(errorCode(() => a.transactionEnd(tx))).toBe('EAGAIN');
    expect(b.readText('/c/x')).toBe('2');
    expect(errorCode(() => b.read('/c/y'))).toBe('ENOENT');
  });

  it('conflict on a node created or removed meanwhile', () => {
    a.write('/e/gone', '1');
    const tx = a.transactionStart();
    expect(errorCode(() => a.read('/e/new', tx))).toBe('ENOENT');
    a.read('/e/gone', tx);
    b.write('/e/new', 'x');
    expect(errorCode(() => a.transactionEnd(tx))).toBe('EAGAIN');
    const tx2 = a.transactionStart();
    a.read('/e/gone', tx2);
    b.rm('/e/gone');
    expect(errorCode(() => a.transactionEnd(tx2))).toBe('EAGAIN');
  });

  it('do not conflict with changes to nodes they never touched', () => {
    a.write('/n/mine', '1');
    a.write('/n/theirs', '1');
    const tx = a.transactionStart();
    a.write('/n/mine', '2', tx);
    b.write('/n/theirs', '2');
    a.transactionEnd(tx);
    expect(b.readText('/n/mine')).toBe('2');
  });

  it('fire watch events only when they commit, and none when aborted', () => {
    b.watch('/ev', 't');
    b.takeEvents();
    const tx = a.transactionStart();
    a.write('/ev/x', '1', tx);
    a.rm('/ev/x', tx);
    a.write('/ev/y', '1', tx);
    expect(b.takeEvents()).toEqual([]);
    a.transactionEnd(tx);
    expect(b.takeEvents().map((e) => e.path)).toEqual(['/ev/x', '/ev/y']);
    const tx2 = a.transactionStart();
    a.write('/ev/z', '1', tx2);
    a.transactionEnd(tx2, false);
    expect(b.takeEvents()).toEqual([]);
    expect(errorCode(() => b.read('/ev/z'))).toBe('ENOENT');
  });

  it('number transactions per connection from 1, refuse unknown ids and nesting', () => {
    expect(a.transactionStart()).toBe(1);
    expect(a.transactionStart()).toBe(2);
    expect(b.transactionStart()).toBe(1);
    expect(errorCode(() => a.read('/', 99))).toBe('ENOENT');
    expect(errorCode(() => a.transactionEnd(99))).toBe('ENOENT');
    expect(errorCode(() => a.transactionEnd(0))).toBe('ENOENT');
    const r = a.raw(XsType.TRANSACTION_START, encodeStrings(['']), 1);
    expect(r.payload.toString('latin1')).toBe('EBUSY\0');
    a.transactionEnd(1);
    expect(errorCode(() => a.transactionEnd(1))).toBe('ENOENT');
  });

  it('WATCH and UNWATCH ignore the transaction id', () => {
    const r = a.raw(XsType.WATCH, encodeStrings(['/w', 't']), 12345);
    expect(r.type).toBe(XsType.WATCH);
  });

  it('the transaction() helper retries the whole function on EAGAIN', () => {
    a.write('/h/counter', '0');
    let attempts = 0;
    a.transaction((tx) => {
      attempts++;
      const n = Number(a.readText('/h/counter', tx));
      if (attempts === 1) b.write('/h/counter', '10'); // a concurrent writer
      a.write('/h/counter', String(n + 1), tx);
    });
    expect(attempts).toBe(2);
    expect(a.readText('/h/counter')).toBe('11');
  });

  it('closing a connection aborts its transactions', () => {
    const c = server.session(0);
    const tx = c.transactionStart();
    c.write('/closed', '1', tx);
    c.close();
    expect(errorCode(() => a.read('/closed'))).toBe('ENOENT');
  });

  // Two clients run read/write transactions over a few existing keys, interleaved at random.
  // Whatever commits, the store must end as if the committed transactions ran one after another
  // in commit order, and every read inside a transaction must see that serial state.
  it('committed transactions are serializable in commit order', () => {
    const keys = ['/s/k0', '/s/k1', '/s/k2'];
    type Op = { who: 0 | 1; kind: 'read' | 'write' | 'start' | 'commit' | 'abort'; key: number; value: number };
    const opArb: fc.Arbitrary<Op> = fc.record({
      who: fc.constantFrom(0 as const, 1 as const),
      kind: fc.oneof(
        { weight: 3, arbitrary: fc.constant('start' as const) },
        { weight: 4, arbitrary: fc.constant('read' as const) },
        { weight: 4, arbitrary: fc.constant('write' as const) },
        { weight: 3, arbitrary: fc.constant('commit' as const) },
        { weight: 1, arbitrary: fc.constant('abort' as const) },
      ),
      key: fc.nat({ max: keys.length - 1 }),
      value: fc.nat({ max: 999 }),
    });
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 10, maxLength: 60 }), (ops) => {
        const srv = new XenstoredServer();
        const clients = [srv.session(0), srv.session(0)];
        for (const k of keys) clients[0]!.write(k, 'init');
        const model = new Map(keys.map((k) => [k, 'init']));
        const open: Array<{ tx: number; reads: Map<string, string>; writes: Map<string, string> } | undefined> = [undefined, undefined];
        for (const op of ops) {
          const c = clients[op.who]!;
          const t = open[op.who];
          const key = keys[op.key]!;
          if (op.kind === 'start') {
            if (!t) open[op.who] = { tx: c.transactionStart(), reads: new Map(), writes: new Map() };
          } else if (op.kind === 'read') {
            const got = c.readText(key, t?.tx ?? 0);
            if (!t) expect(got).toBe(model.get(key));
            else if (t.writes.has(key)) expect(got).toBe(t.writes.get(key));
            else if (t.reads.has(key)) expect(got).toBe(t.reads.get(key));
            else t.reads.set(key, got);
          } else if (op.kind === 'write') {
            const v = `v${op.value}`;
            c.write(key, v, t?.tx ?? 0);
            if (t) {
              if (!t.reads.has(key) && !t.writes.has(key)) t.reads.set(key, model.get(key)!);
              t.writes.set(key, v);
            } else model.set(key, v);
          } else if (t) {
            open[op.who] = undefined;
            if (op.kind === 'abort') {
              c.transactionEnd(t.tx, false);
              continue;
            }
            // Serializable iff everything it saw is still what the serial state holds.
            const valid = [...t.reads].every(([k, v]) => model.get(k) === v);
            let committed = true;
            try {
              c.transactionEnd(t.tx, true);
            } catch (err) {
              if (!(err instanceof XsRequestError && err.code === 'EAGAIN')) throw err;
              committed = false;
            }
            if (committed) {
              expect(valid).toBe(true);
              for (const [k, v] of t.writes) model.set(k, v);
            }
          }
        }
        for (const k of keys) expect(clients[0]!.readText(k)).toBe(model.get(k));
      }),
      { numRuns: 300 },
    );
  });
});
