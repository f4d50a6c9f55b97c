/**
 * The daemon's shell against a real xenstore server (our `xenballoonctl xenstored`, in its own
 * process) through the real libxenstore binding: domain discovery through @introduceDomain,
 * provisioning, a guest's report written through its own socket with guest permissions,
 * targets written in transactions, and reconnection after xenstored is restarted.
 * The hypervisor and the decision are fakes here; test/integration runs the whole thing.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { XenStoreAdapter } from '../../src/daemon/adapters/xenstore.js';
import { ReportTrackerIntake, provisionReportNode } from '../../src/daemon/adapters/reports.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/daemon/log.js';
import { formatV1, type V1Record } from '../../src/report/index.js';
import { XenStore } from '../../src/xen/xenstore.js';
import { ctlPath, startXenstored, waitForXenstored, type XenstoredProcess } from '../helpers/xenstored.js';
import { FakeDecider, FakeHypervisor, waitFor } from './fakes.js';

function record(committedKib: number, seq: number, psiPct: number | null = null): string {
  const r: V1Record = {
    seq, uptimeS: 100 + seq, memTotalKib: 500_000, memFreeKib: 100_000, memAvailableKib: 200_000, buffersKib: 1000,
    cachedKib: 50_000, shmemKib: 100, swapTotalKib: 0, swapFreeKib: 0, committedAsKib: committedKib,
    balloonCurrentKib: null, pswpin: 0, pswpout: 0, pgmajfault: 0, workingsetRefault: 0, oomKill: 0,
    psiSomeAvg10Bp: psiPct === null ? null : psiPct * 100, psiFullAvg10Bp: psiPct === null ? null : 0,
    psiSomeTotalUs: psiPct === null ? null : 1000, psiFullTotalUs: psiPct === null ? null : 0,
  };
  return formatV1(r);
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.().catch(() => undefined);
});

async function setup(xsd: XenstoredProcess, intervalMs = 50) {
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const log = createLogger({ level: 'debug', destination: sink, format: 'json' });
  const store = await XenStoreAdapter.open(xsd.socket, 5_000);
  const hv = new FakeHypervisor();
  hv.add(0, 1024 * 1024, 1024 * 1024);
  const decider = new FakeDecider();
  decider.intervalMs = intervalMs;
  const daemon = new Daemon({
    store, hypervisor: hv, reports: new ReportTrackerIntake({ log, metrics: null }), decider, policyFiles: [], log,
    metrics: null, notifier: null, dryRun: false, provision: (d) => provisionReportNode(store, d),
  });
  cleanups.push(async () => {
    await daemon.stop();
    await store.close();
  });
  await daemon.start();
  return { daemon, store, hv };
}

async function openXs(path: string): Promise<XenStore> {
  const xs = await XenStore.open({ path, timeoutMs: 5_000 });
  cleanups.push(() => xs.close());
  return xs;
}

describe('daemon shell against our xenstored', () => {
  it('manages a domain introduced after start: provisions it, reads its report, sets its target', async () => {
    const xsd = await startXenstored({ domains: [3] });
    cleanups.push(() => xsd.stop());
    // Regular steps a minute apart: only @introduceDomain can make the daemon look in time.
    const t = await setup(xsd, 60_000);
    const dom0 = await openXs(xsd.socket);
    // The toolstack creates the domain: memory keys, then the hypervisor knows it, then @introduceDomain.
    await dom0.write('/local/domain/3/memory/static-max', '1048576');
    await dom0.write('/local/domain/3/memory/target', '524288');
    t.hv.add(3, 524288, 1049600);
    // (Our server introduced domain 3 when it created its socket; introducing another domain
    // fires the same @introduceDomain watch.)
    await dom0.introduceDomain(9, 1, 1);
    await waitFor(() => t.daemon.status().domains.some((d) => d.domid === 3 && d.target_kib === 524288), 'domain 3 observed');
    // Provisioned: the guest (through its own socket, with guest permissions) can publish.
    const guest = await openXs(xsd.domainSockets.get(3) as string);
    await waitFor(async () => {
      try {
        // Under pressure (PSI some 40%): urgent, so it is acted on before the next regular step.
        await guest.write('/local/domain/3/data/xenballoon/report', record(300_000, 1, 40));
        return true;
      } catch {
        return false;
      }
    }, 'guest can write its report');
    await waitFor(async () => (await dom0.readString('/local/domain/3/memory/target')) === '300000', 'target written from the report');
    // A guest cannot write its own target (libxl's permissions hold on our server).
    await expect(guest.write('/local/domain/3/memory/target', '9999999')).rejects.toMatchObject({ code: 'EACCES' });
  });

  it('re-establishes a lost xenstore connection and its watches come back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xbd-recon-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const socket = join(dir, 'xenstored.sock');
    const guestSocket = join(dir, 'dom4.sock');
    const xsd = await spawnXenstoredAt(socket, 4, guestSocket);
    const t = await setup({ socket } as XenstoredProcess);
    const seed = async () => {
      const dom0 = await XenStore.open({ path: socket, timeoutMs: 5_000 });
      await dom0.write('/local/domain/4/memory/static-max', '1048576');
      await dom0.write('/local/domain/4/memory/target', '524288');
      await dom0.close();
    };
    await seed();
    t.hv.add(4, 524288, 1049600);
    await waitFor(() => t.daemon.status().domains.some((d) => d.domid === 4 && d.target_kib === 524288), 'domain 4 observed');

    // xenstored dies; a new one starts on the same socket (with an empty store, as after a crash).
    await xsd.stop();
    await waitFor(() => !t.daemon.status().daemon.xenstore_connected, 'disconnection noticed');
    const xsd2 = await spawnXenstoredAt(socket, 4, guestSocket);
    await waitFor(() => t.daemon.status().daemon.xenstore_connected, 'reconnected', 30_000);
    await seed();
    // The watches are back: a report written by the guest now still reaches the daemon.
    const guest = await openXs(guestSocket);
    await waitFor(async () => {
      try {
        await guest.write('/local/domain/4/data/xenballoon/report', record(400_000, 1));
        return true;
      } catch {
        return false;
      }
    }, 'guest can write its report');
    const dom0 = await openXs(socket);
    await waitFor(async () => (await dom0.readString('/local/domain/4/memory/target').catch(() => '')) === '400000', 'target written after reconnect');
    await xsd2.stop();
  });
});

/** `xenballoonctl xenstored` on a fixed socket path (so a restarted server takes the old one's place). */
async function spawnXenstoredAt(socket: string, domid: number, guestSocket: string): Promise<{ stop(): Promise<void> }> {
  const child = spawn(process.execPath, [ctlPath, 'xenstored', '--socket', socket, '--domain-socket', `${domid}=${guestSocket}`, '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  cleanups.push(stop);
  await waitForXenstored(socket, 30_000);
  return { stop };
}
