import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InstanceLockError, lockStateDir, LOCK_FILE } from '../../src/daemon/instance-lock.js';
import { ReservationBook } from '../../src/daemon/reservations.js';
import { StateFile } from '../../src/daemon/state-file.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'xbd-i14-state-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const ready = new Map([['r1', { state: 'ready' as const, reason: null }]]);

describe('state file and reservations across restarts', () => {
  it('saves held reservations atomically and restores them with their remaining time and IDs', async () => {
    const dir = tmp();
    const book = new ReservationBook();
    const { outcome } = book.request(65536, { timeoutMs: 1000, ttlMs: 600_000, label: 'x', domain: 'web', nowMs: 1000 });
    book.afterDecision(ready, [0, 1], 2000);
    expect((await outcome).ok).toBe(true);
    const sf = new StateFile(dir);
    await sf.save({ seq: book.lastSeq, reservations: book.persisted(), pins: [] });
    expect(readFileSync(join(dir, 'state.json'), 'utf8')).toMatch(/"id":"r1"/);

    const again = new ReservationBook();
    const loaded = sf.load(() => undefined);
    again.noteSeq(loaded!.seq);
    expect(again.restore(loaded!.reservations, 302_000)).toEqual(['r1']);
    expect(again.status()[0]).toMatchObject({ id: 'r1', state: 'held', domain: 'web', expires_at_ms: 602_000 });
    expect(again.request(1, { timeoutMs: 1, ttlMs: 1, label: null, nowMs: 0 }).id).toBe('r2');
    // Past its expiry it is not restored.
    expect(new ReservationBook().restore(loaded!.reservations, 602_000)).toEqual([]);
  });

  it('sets a corrupt state file aside and says so', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'state.json'), '{"version":1,"seq":');
    const said: string[] = [];
    expect(new StateFile(dir).load((w) => said.push(w))).toBeNull();
    expect(said[0]).toMatch(/not valid JSON; starting without saved reservations and pins/);
    expect(existsSync(join(dir, 'state.json.bad'))).toBe(true);
  });

  it('a named reservation binds only to a new domain of that name; an unnamed one does not take it', () => {
    const book = new ReservationBook();
    book.request(1000, { timeoutMs: 1000, ttlMs: 60_000, label: null, domain: 'web', nowMs: 0 });
    book.request(1000, { timeoutMs: 1000, ttlMs: 60_000, label: null, nowMs: 1 });
    book.afterDecision(new Map([['r1', { state: 'ready', reason: null }], ['r2', { state: 'ready', reason: null }]]), [0], 2);
    // Only web appears: the unnamed r2 must not take it from r1... and r1 does.
    const first = book.bind(new Map([[0, { currentKib: 1, name: 'Domain-0' }], [6, { currentKib: 10, name: 'web' }]]));
    expect(first.map((e) => e.detail)).toEqual(['domain 6 took reservation r1']);
    // A domain of another name (a concurrent xl create) takes the unnamed one, never r1.
    const second = book.bind(new Map([[0, { currentKib: 1, name: 'Domain-0' }], [6, { currentKib: 10, name: 'web' }], [7, { currentKib: 5, name: 'db' }]]));
    expect(second.map((e) => e.detail)).toEqual(['domain 7 took reservation r2']);
  });

  it('an unnamed reservation leaves alone a new domain someone reserved by name', () => {
    const book = new ReservationBook();
    book.request(1000, { timeoutMs: 1000, ttlMs: 60_000, label: null, nowMs: 0 });
    book.request(1000, { timeoutMs: 1000, ttlMs: 60_000, label: null, domain: 'web', nowMs: 1 });
    book.afterDecision(new Map([['r1', { state: 'ready', reason: null }], ['r2', { state: 'ready', reason: null }]]), [0], 2);
    const ev = book.bind(new Map([[0, { currentKib: 1, name: 'Domain-0' }], [6, { currentKib: 10, name: 'web' }]]));
    expect(ev.map((e) => e.detail)).toEqual(['domain 6 took reservation r2']);
  });
});

describe('single-instance lock file', () => {
  it('refuses while a live xenballoond holds it, replaces a dead holder\'s', async () => {
    const dir = tmp();
    const release = lockStateDir(dir);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).toBe(String(process.pid));
    release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    writeFileSync(join(dir, LOCK_FILE), '999999999\n'); // nobody: stale
    lockStateDir(dir)();
    // A live process that is a xenballoond (by its command line) holds it.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)', 'xenballoond'], { stdio: 'ignore' });
    try {
      // Until it has exec'd, its command line is still ours.
      for (let i = 0; i < 500 && !readFileSync(`/proc/${other.pid}/cmdline`, 'utf8').includes('xenballoond'); i++) await new Promise((r) => setTimeout(r, 10));
      writeFileSync(join(dir, LOCK_FILE), `${other.pid}\n`);
      expect(() => lockStateDir(dir)).toThrow(new InstanceLockError(`another xenballoond (pid ${other.pid}) holds ${join(dir, LOCK_FILE)}; stop it first (systemctl stop xenballoond)`));
    } finally {
      other.kill();
    }
  });
});
