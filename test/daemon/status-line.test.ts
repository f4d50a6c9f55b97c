import { describe, expect, it } from 'vitest';
import { statusLine } from '../../src/daemon/status-line.js';

describe('statusLine (systemd STATUS=)', () => {
  const base = { domains: 12, managed: 9, failing: null, stalled: false, dryRun: false };

  it('says how many domains are managed, and nothing that changes every step', () => {
    expect(statusLine(base)).toBe('managing 9 of 12 domains');
    expect(statusLine({ ...base, domains: 1, managed: 1 })).toBe('managing 1 of 1 domain');
    expect(statusLine({ ...base, dryRun: true })).toBe('managing 9 of 12 domains (dry run)');
  });

  it('names a failing step and a stall', () => {
    expect(statusLine({ ...base, failing: '2 of 3 actions failed' })).toBe('managing 9 of 12 domains; last step failed: 2 of 3 actions failed');
    expect(statusLine({ ...base, failing: 'xenstore timeout', stalled: true })).toMatch(/STALLED.*xenstore timeout/);
  });
});
