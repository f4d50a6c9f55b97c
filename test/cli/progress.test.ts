import { describe, expect, it } from 'vitest';
import { Progress } from '../../src/cli/progress.js';

describe('progress line', () => {
  it('redraws in place at most every 250 ms and erases itself when done', () => {
    const out: string[] = [];
    let now = 0;
    const p = new Progress({ write: (s) => out.push(s), now: () => now });
    p.update('scale-1000, xenballoond', 0, 1_800_000);
    now = 100;
    p.update('scale-1000, xenballoond', 60_000, 1_800_000);
    now = 300;
    p.update('scale-1000, xenballoond', 900_000, 1_800_000);
    p.done();
    expect(out).toEqual([
      '\r\x1b[Kscale-1000, xenballoond: 0/30 simulated minutes (0%)',
      '\r\x1b[Kscale-1000, xenballoond: 15/30 simulated minutes (50%)',
      '\r\x1b[K',
    ]);
  });
});
