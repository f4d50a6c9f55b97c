/**
 * The one-line STATUS= the daemon gives systemd (`systemctl status xenballoond` shows it). It
 * names what an operator checks first (how many domains are managed, whether steps succeed)
 * and nothing that changes every step, so that it is sent only when something happened.
 */
export interface StatusFacts {
  domains: number;
  managed: number;
  /** The last step's error, when the last step failed. */
  failing: string | null;
  /** No step has completed for several intervals. */
  stalled: boolean;
  dryRun: boolean;
}

export function statusLine(f: StatusFacts): string {
  const head = `managing ${f.managed} of ${f.domains} domain${f.domains === 1 ? '' : 's'}${f.dryRun ? ' (dry run)' : ''}`;
  if (f.stalled) return `${head}; STALLED: no step completed lately (${f.failing ?? 'no error'})`;
  if (f.failing !== null) return `${head}; last step failed: ${f.failing}`;
  return head;
}
