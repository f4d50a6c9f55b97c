/**
 * sd_notify through libsystemd: messages reach a NOTIFY_SOCKET (a unix datagram socket bound as
 * systemd does), and without NOTIFY_SOCKET nothing is sent.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotifier } from '../../src/daemon/sd-notify.js';
import { hasLibsystemd, NotifySocket } from '../helpers/notify-socket.js';

let dir: string;
let sock: NotifySocket;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'xbd-notify-'));
  sock = new NotifySocket(join(dir, 'notify.sock'));
});
afterAll(() => {
  sock.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('sd_notify', () => {
  it.skipIf(!hasLibsystemd)('sends READY, STATUS, WATCHDOG and STOPPING to NOTIFY_SOCKET', () => {
    // libsystemd reads NOTIFY_SOCKET from the process environment itself, as under systemd.
    process.env.NOTIFY_SOCKET = sock.path;
    const n = createNotifier({ NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '30000000' });
    expect(n.active).toBe(true);
    expect(n.watchdogIntervalMs).toBe(15_000);
    n.ready('managing 3 domains\nsecond line');
    n.watchdog();
    n.stopping();
    delete process.env.NOTIFY_SOCKET;
    expect(sock.drain()).toEqual(['READY=1\nSTATUS=managing 3 domains second line', 'WATCHDOG=1', 'STOPPING=1']);
  });

  it('is a no-op without NOTIFY_SOCKET, and has no watchdog interval', () => {
    const before = sock.drain().length;
    const n = createNotifier({});
    expect(n.active).toBe(false);
    expect(n.watchdogIntervalMs).toBeNull();
    n.ready();
    n.watchdog();
    expect(sock.drain()).toHaveLength(before);
  });
});
