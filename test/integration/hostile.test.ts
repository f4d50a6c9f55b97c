/**
 * Issue 11's attack with the real daemon on the simulated host: `hostile-2g` (three honest 400M
 * guests and one 256M guest forging consistent reports every 2 s), the shipped policy. The
 * honest guests keep at least 93 % of min(need, fair share) as the daemon reports them (what they
 * use within their share is guaranteed; the rest of their need competes, docs/policy.md), and
 * the liar's claim is shown as capped.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Rig, waitFor } from './harness.js';

const SCENARIO = fileURLToPath(new URL('../../config/scenarios/hostile-2g.yaml', import.meta.url));
const POLICY = fileURLToPath(new URL('../../config/policy.yaml', import.meta.url));

describe('hostile-2g with the real daemon', () => {
  let rig: Rig | null = null;
  afterEach(async () => {
    await rig?.cleanup();
    rig = null;
  });

  it('a liar does not take the honest guests\' fair share, and is shown as capped', async () => {
    rig = new Rig();
    await rig.start([], SCENARIO, POLICY);
    const d = await rig.startDaemon();
    // Until, while the liar's claim is capped, every honest guest is at >= 93 % of min(need,
    // fair share) for five status reads in a row (the guests boot, then converge from 400M).
    let good = 0;
    await waitFor('honest guests at their fair share', async () => {
      const st = await d.status();
      const honest = st.domains.filter((x) => x.name.startsWith('honest-'));
      const lying = st.domains.find((x) => x.name === 'hostile-1')?.flags.includes('claim-capped') ?? false;
      const ok = lying && honest.length === 3 && honest.every((h) => {
        if (h.need_kib === null || h.target_kib === null) return false;
        const due = Math.min(h.need_kib, h.fair_share_kib ?? Infinity);
        return h.target_kib >= 0.93 * due;
      });
      good = ok ? good + 1 : 0;
      return good >= 5;
    }, 90_000);
    const liar = await d.domain('hostile-1');
    expect(liar?.flags).toContain('claim-capped');
    expect(liar?.fair_share_kib ?? 0).toBeGreaterThan(0);
    // It never got near the 1G it claims.
    expect(liar?.target_kib ?? Infinity).toBeLessThan(640 * 1024);
  }, 150_000);
});
