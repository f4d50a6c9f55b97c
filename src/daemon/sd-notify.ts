/**
 * systemd readiness and watchdog through libsystemd's sd_notify(3), loaded with koffi. Without
 * NOTIFY_SOCKET (not started by systemd with Type=notify) or without libsystemd on the machine,
 * every call is a no-op: the daemon must run the same under any supervisor.
 */
import koffi from 'koffi';

export interface Notifier {
  /** True when messages actually reach systemd. */
  readonly active: boolean;
  ready(status?: string): void;
  status(status: string): void;
  stopping(): void;
  reloading(): void;
  watchdog(): void;
  /** WATCHDOG_USEC / 2 in ms when systemd expects keep-alives, else null. */
  readonly watchdogIntervalMs: number | null;
}

type SdNotify = (unsetEnvironment: number, state: string) => number;

let cached: SdNotify | null | undefined;

function loadSdNotify(): SdNotify | null {
  if (cached !== undefined) return cached;
  try {
    const lib = koffi.load('libsystemd.so.0');
    cached = lib.func('int sd_notify(int unset_environment, const char *state)') as SdNotify;
  } catch {
    cached = null;
  }
  return cached;
}

/** Status text must be one line for systemd; keep it short too. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 200);
}

/**
 * `env` decides whether to notify at all; libsystemd itself reads NOTIFY_SOCKET from the
 * process environment, as systemd sets it.
 */
export function createNotifier(env: NodeJS.ProcessEnv = process.env): Notifier {
  const fn = env.NOTIFY_SOCKET ? loadSdNotify() : null;
  const usec = Number(env.WATCHDOG_USEC);
  const pidOk = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
  const watchdogIntervalMs = fn && Number.isFinite(usec) && usec > 0 && pidOk ? Math.max(1, Math.floor(usec / 2000)) : null;
  const send = (state: string): void => {
    if (!fn) return;
    try {
      fn(0, state);
    } catch {
      // Telling systemd is best effort; the daemon's work does not depend on it.
    }
  };
  return {
    active: fn !== null,
    watchdogIntervalMs,
    ready: (status) => send(status ? `READY=1\nSTATUS=${oneLine(status)}` : 'READY=1'),
    status: (status) => send(`STATUS=${oneLine(status)}`),
    stopping: () => send('STOPPING=1'),
    reloading: () => send(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`),
    watchdog: () => send('WATCHDOG=1'),
  };
}
