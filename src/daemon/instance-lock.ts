/**
 * One xenballoond per host: two daemons balancing one xenstore would fight over every target.
 * Two locks, because either alone misses a case: a lock file in the state directory (two
 * daemons sharing a state directory, whatever xenstore they use) and a xenstore node (two daemons
 * against one xenstore, whatever their state directories and control sockets). Each holds
 * `PID` (plus host name and control socket in the node); a holder whose process is gone (kill -9)
 * is stale and replaced. Node has no flock(): a process check is what is left, and it is enough
 * on one host, where dom0's daemon lives.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const LOCK_FILE = 'xenballoond.lock';
export const LOCK_NODE = '/tool/xenballoond/owner';

export class InstanceLockError extends Error {}

/** Whether `pid` is a live xenballoond (not us). A pid reused by another program does not count. */
export function isLiveDaemon(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but is not ours to signal; still somebody's live process.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('xenballoond');
  } catch {
    return true; // no /proc: trust the signal check
  }
}

/** Takes DIR/xenballoond.lock, or throws with the holder's pid. Returns a release function. */
export function lockStateDir(dir: string): () => void {
  const file = path.join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
      return () => {
        try {
          if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.unlinkSync(file);
        } catch {
          // Already gone.
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new InstanceLockError(`cannot create the lock file ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check --state DIR`);
      }
    }
    const holder = Number(readOr(file, '').trim());
    if (isLiveDaemon(holder)) {
      throw new InstanceLockError(`another xenballoond (pid ${holder}) holds ${file}; stop it first (systemctl stop xenballoond)`);
    }
    fs.rmSync(file, { force: true }); // stale: its daemon is gone
  }
  throw new InstanceLockError(`cannot take the lock file ${file}: another process keeps creating it`);
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/** What the xenstore node holds: `PID HOST CONTROL`. */
export function ownerValue(controlPath: string): string {
  return `${process.pid} ${os.hostname()} ${controlPath}`;
}

/** The live daemon another owner value names, or null when it is us, stale, or another host's. */
export function liveOwner(value: string | null): { pid: number; control: string } | null {
  if (value === null) return null;
  const [pidText, host, ...rest] = value.trim().split(' ');
  const pid = Number(pidText);
  if (host !== os.hostname() || !isLiveDaemon(pid)) return null;
  return { pid, control: rest.join(' ') };
}
