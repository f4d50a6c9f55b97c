#!/usr/bin/env -S node --max-semi-space-size=4
/**
 * xenballoond: the dom0 service. Parses its flags, opens xenstore, the hypervisor and the
 * policy (each failure is one clear line and a non-zero exit), then runs the daemon until
 * SIGTERM. SIGHUP reloads the policy.
 *
 * The shebang caps V8's young generation at 4 MiB: the daemon's garbage is small and short-lived,
 * and the default (16 MiB semi-spaces) costs ~25 MiB of resident memory for nothing at 1,000
 * domains (docs/benchmarks.md).
 */
import { parseArgs } from 'node:util';
import { CoreDecider } from '../daemon/adapters/core.js';
import { loadPolicySource } from '../daemon/adapters/policy.js';
import { openHypervisor, parseHypervisorSpec } from '../daemon/adapters/hypervisor.js';
import { ReportTrackerIntake, provisionReportNode } from '../daemon/adapters/reports.js';
import { XenStoreAdapter } from '../daemon/adapters/xenstore.js';
import { DEFAULT_CONTROL_PATH } from '../daemon/control-protocol.js';
import { InstanceLockError, liveOwner, LOCK_NODE, lockStateDir, ownerValue } from '../daemon/instance-lock.js';
import type { DaemonStore } from '../daemon/ports.js';
import { DEFAULT_STATE_DIR, StateFile, StateFileError } from '../daemon/state-file.js';
import { ControlServer, ControlServerError } from '../daemon/control-server.js';
import { Daemon } from '../daemon/daemon.js';
import { createLogger, droppedLogLines, LOG_LEVELS, type LogLevel } from '../daemon/log.js';
import { parseListenAddress } from '../daemon/listen-address.js';
import type { MetricsServer } from '../daemon/metrics.js';
import { createNotifier } from '../daemon/sd-notify.js';
import type { Hypervisor } from '../xen/hypervisor.js';
import { isXenStoreError } from '../xen/xenstore.js';
import { versionLine } from '../version.js';
import { EXIT, runMain, UserError } from './errors.js';

export const DEFAULT_POLICY_FILE = '/etc/xenballoond/policy.yaml';

const HELP = `usage: xenballoond [options]

The xenballoond dom0 service: watches each guest's memory reports in xenstore, divides host
memory by need, minimums, weights and limits from the policy, and sets balloon targets.

  --xenstore PATH        xenstored's socket (default: libxenstore's, /var/run/xenstored/socket)
  --hypervisor xen|sim:PATH
                         libxenctrl (default), or a simulated host's hypervisor.sock
  --policy FILE|DIR      policy file, or a directory of *.yaml merged in name order
                         (default ${DEFAULT_POLICY_FILE}; the built-in default if absent)
  --control PATH         control socket for xenballoonctl (default ${DEFAULT_CONTROL_PATH})
  --state DIR            where held reservations and pins are kept across restarts, and the
                         single-instance lock (default ${DEFAULT_STATE_DIR})
  --metrics ADDR:PORT    serve Prometheus metrics on http://ADDR:PORT/metrics (e.g. 127.0.0.1:9464)
  --dry-run              decide and log, but write nothing
  --log-level LEVEL      ${LOG_LEVELS.join(', ')} (default info)
  --log-format journal|json|pretty
                         default: journal when stdout is the systemd journal (syslog
                         priorities, readable lines), pretty on a terminal, JSON lines otherwise
  --version              print the version and exit

Exit status: 0 stopped by SIGTERM/SIGINT; 1 a runtime failure (xenstored or the hypervisor
unreachable, control socket in use); 2 bad options; 77 not root; 78 bad policy; 70 a bug.

Signals: SIGHUP reloads the policy (an invalid one is refused, the old one kept); SIGTERM
finishes the writes in flight and exits. See docs/operations.md.
`;

function xenstoreError(err: unknown, path: string | undefined): UserError {
  const where = path ?? 'the default socket (/var/run/xenstored/socket)';
  const code = isXenStoreError(err) ? err.code : ((err as NodeJS.ErrnoException).code ?? 'error');
  if (code === 'EACCES') return new UserError(`cannot connect to xenstored at ${where}: permission denied; run xenballoond as root`);
  return new UserError(`cannot connect to xenstored at ${where} (${code}): is xenstored running? (systemctl status xenstored)`);
}

/** The xenstore half of the single-instance lock: refuses when another live daemon owns the node. */
async function claimXenstore(store: DaemonStore, controlPath: string): Promise<void> {
  const other = liveOwner(await store.read(LOCK_NODE));
  if (other) {
    throw new UserError(`another xenballoond (pid ${other.pid}, control socket ${other.control}) is managing this xenstore; stop it first`);
  }
  await store.transaction((tx) => tx.write(LOCK_NODE, ownerValue(controlPath)));
}

await runMain('xenballoond', async () => {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: {
      xenstore: { type: 'string' },
      hypervisor: { type: 'string', default: 'xen' },
      policy: { type: 'string' },
      control: { type: 'string' },
      state: { type: 'string' },
      metrics: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      'log-level': { type: 'string', default: 'info' },
      'log-format': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(versionLine('xenballoond') + '\n');
    return 0;
  }
  if (positionals.length) throw new UserError(`unexpected argument '${positionals[0]}'; see xenballoond --help`, 2);
  const level = values['log-level'] as LogLevel;
  if (!LOG_LEVELS.includes(level)) throw new UserError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`, 2);
  const fmt = values['log-format'];
  if (fmt !== undefined && fmt !== 'json' && fmt !== 'pretty' && fmt !== 'journal') throw new UserError('--log-format must be journal, json or pretty', 2);
  const hvSpec = parseHypervisorSpec(values.hypervisor);
  const controlPath = values.control ?? DEFAULT_CONTROL_PATH;
  const metricsAddr = values.metrics === undefined ? null : parseListenAddress(values.metrics);
  if (values.metrics !== undefined && !metricsAddr) throw new UserError(`--metrics must be ADDR:PORT, e.g. 127.0.0.1:9464, not '${values.metrics}'`, 2);

  const usesRealDefaults = values.xenstore === undefined || hvSpec.kind === 'xen' || values.control === undefined || (values.state === undefined && !values['dry-run']);
  if (usesRealDefaults && process.getuid?.() !== 0) {
    throw new UserError('must run as root: xenballoond talks to xenstored and the hypervisor and owns /run/xenballoond (start it with systemctl, or sudo)', EXIT.NOPERM);
  }

  const log = createLogger({ level, ...(fmt === undefined ? {} : { format: fmt }) });
  const notifier = createNotifier();
  notifier.status('starting: reading the policy, connecting to the hypervisor and xenstored');
  const policySource = loadPolicySource(values.policy ?? DEFAULT_POLICY_FILE, values.policy === undefined);

  const hypervisor: Hypervisor = await openHypervisor(hvSpec);
  // A dry run promises nothing and may run beside the real daemon: no state, no locks.
  const dryRun = values['dry-run'];
  const state = dryRun ? null : new StateFile(values.state ?? DEFAULT_STATE_DIR);
  let unlockDir = () => undefined as void;
  if (state) {
    try {
      state.prepare();
      unlockDir = lockStateDir(state.dir);
    } catch (err) {
      await hypervisor.close();
      if (err instanceof StateFileError || err instanceof InstanceLockError) throw new UserError(err.message);
      throw err;
    }
  }
  process.on('exit', () => unlockDir());
  let store: XenStoreAdapter;
  try {
    store = await XenStoreAdapter.open(values.xenstore);
  } catch (err) {
    await hypervisor.close();
    throw xenstoreError(err, values.xenstore);
  }
  if (!dryRun) {
    try {
      await claimXenstore(store, controlPath);
    } catch (err) {
      await store.close();
      await hypervisor.close();
      throw err;
    }
  }

  // Metrics nobody can scrape are not kept: prom-client is loaded only with --metrics.
  const metricsModule = metricsAddr ? await import('../daemon/metrics.js') : null;
  const metrics = metricsModule ? new metricsModule.DaemonMetrics() : null;
  const decider = new CoreDecider(policySource.policy);
  const reports = new ReportTrackerIntake({ log, metrics });
  const daemon = new Daemon({
    store, hypervisor, reports, decider, log, metrics, notifier,
    policyFiles: policySource.files,
    dryRun,
    state,
    provision: values['dry-run'] ? undefined : (domid) => provisionReportNode(store, domid),
    reload: {
      load: async () => {
        const next = loadPolicySource(values.policy ?? DEFAULT_POLICY_FILE, values.policy === undefined);
        return { files: next.files, intervalMs: CoreDecider.intervalOf(next.policy), apply: () => decider.setPolicy(next.policy) };
      },
    },
  });

  if (metrics) {
    metrics.beforeScrape = () => daemon.updateMetrics();
    metrics.droppedLogLines = () => droppedLogLines(log);
  }

  let control: ControlServer;
  try {
    control = await ControlServer.listen(controlPath, (req, signal) => daemon.handleControl(req, signal), (err) => log.error({ err }, 'control socket error'));
  } catch (err) {
    await store.close();
    await hypervisor.close();
    if (err instanceof ControlServerError) throw new UserError(err.message);
    const e = err as NodeJS.ErrnoException;
    throw new UserError(`cannot listen on the control socket ${controlPath}: ${e.code ?? e.message}`);
  }
  let metricsServer: MetricsServer | null = null;
  if (metricsAddr && metricsModule && metrics) {
    try {
      metrics.enableProcessMetrics();
      metricsServer = await metricsModule.serveMetrics(metrics, metricsAddr.host, metricsAddr.port);
    } catch (err) {
      await control.close();
      await store.close();
      await hypervisor.close();
      throw new UserError(`cannot serve metrics on ${values.metrics}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!metricsServer.loopback) log.warn(`metrics are served on ${metricsServer.address}, not a loopback address: anyone who can reach it sees domain names and sizes`);
  }

  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: finishing the writes in flight');
    void (async () => {
      await daemon.stop();
      if (!dryRun) await store.xs.rm(LOCK_NODE).catch(() => undefined);
      await control.close();
      await metricsServer?.close();
      await store.close();
      await hypervisor.close();
      log.info('stopped');
      resolveDone();
    })();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    log.info('SIGHUP: reloading the policy');
    void daemon.reload();
  });

  notifier.status('starting: observing the domains, first step');
  await daemon.start();
  const st = daemon.status();
  log.info({
    hypervisor: hypervisor.version, xenstore: values.xenstore ?? 'default', control: controlPath,
    metrics: metricsServer?.address ?? null, policy: policySource.files, dryRun: values['dry-run'], intervalMs: daemon.intervalMs,
    domains: st.domains.length,
  }, `xenballoond started: ${st.domains.length} domains, interval ${daemon.intervalMs} ms${values['dry-run'] ? ', dry run' : ''}`);
  if (policySource.builtin) log.info(`no policy at ${DEFAULT_POLICY_FILE}: using the shipped default policy (${policySource.files.join(', ')})`);
  // The first step already sent STATUS= (src/daemon/status-line.ts).
  notifier.ready();
  await done;
  return 0;
});
