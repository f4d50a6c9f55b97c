/**
 * The flooder hostile workload (`xenballoonctl sim-flood`, src/sim/flooder.ts) against a real
 * sim-host: it writes every one of its distinct nodes through the guest's own connection, with
 * that guest's permissions, and reports what it achieved. (What it does to the daemon is
 * test/integration/flood.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { floodKey } from '../../src/sim/flooder.js';
import { Rig, runCtl } from '../integration/harness.js';

describe('xenballoonctl sim-flood', () => {
  const rig = new Rig();
  let domid = 0;

  beforeAll(async () => {
    await rig.start();
    domid = await rig.create('flooder', 'steady', 256 * 1024);
  });
  afterAll(() => rig.cleanup());

  it('rewrites 960 distinct nodes under the guest\'s own data/xenballoon', async () => {
    const r = await runCtl(['sim-flood', '--dir', rig.dir, '--domain', String(domid), '--seconds', '1', '--json']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const res = JSON.parse(r.stdout) as { writes: number; refused: number; keys: number; under: string };
    expect(res).toMatchObject({ refused: 0, keys: 960, under: 'data/xenballoon' });
    expect(res.writes).toBeGreaterThanOrEqual(960);
    const home = `/local/domain/${domid}`;
    let nodes = 0;
    for (const dir of (await rig.xs!.directory(`${home}/data/xenballoon`)).filter((d) => /^d\d+$/.test(d))) {
      nodes += (await rig.xs!.directory(`${home}/data/xenballoon/${dir}`)).length;
    }
    expect(nodes).toBe(960);
    expect(await rig.xs!.readString(`${home}/${floodKey({ keys: 960, under: 'data/xenballoon' }, 959)}`)).toMatch(/^flood \d+$/);
  });

  it('writes with the guest\'s permissions: dom0\'s memory/ is refused', async () => {
    const r = await runCtl(['sim-flood', '--dir', rig.dir, '--domain', String(domid), '--seconds', '0.2', '--keys', '10', '--under', 'memory']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^sim-flood: 0 writes in .* refused \(EACCES\)\n$/);
  });

  it('says in one line what is missing', async () => {
    const r = await runCtl(['sim-flood', '--domain', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--dir and --domain are required/);
  });
});
