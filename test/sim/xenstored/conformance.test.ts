/**
 * Xen's own conformance program (test-xenstore, package xen-utils-4.17) against
 * `xenballoonctl xenstored`, one test case per test it lists. Each runs alone with -t: upstream's
 * "rm dir" init returns a stale errno unless the relative `xenstore-test` dir already exists, so
 * a sibling node keeps it in place (../shared/research/xen-interfaces.md).
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runXenstoreTool, startXenstored, type XenstoredProcess } from '../../helpers/xenstored.js';

const TEST_XENSTORE = '/usr/lib/xen-4.17/bin/test-xenstore';

function listTests(): string[] {
  const r = spawnSync(TEST_XENSTORE, ['-l'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${TEST_XENSTORE} -l failed (is xen-utils-4.17 installed? run make setup): ${r.stderr}`);
  return r.stdout
    .split('\n')
    .map((line) => line.split(':')[0]!.trim())
    .filter((name) => name.length > 0);
}

const tests = listTests();

describe('test-xenstore against xenballoonctl xenstored', () => {
  let xsd: XenstoredProcess;

  beforeAll(async () => {
    xsd = await startXenstored();
    const r = await runXenstoreTool(xsd.socket, 'xenstore-write', ['xenstore-test/keep', '1']);
    expect(r.code).toBe(0);
  });

  afterAll(async () => {
    await xsd?.stop();
  });

  it('lists the upstream tests', () => {
    expect(tests).toContain('ta err');
    expect(tests.length).toBeGreaterThanOrEqual(12);
  });

  it.each(tests)('%s', async (name) => {
    const r = await runXenstoreTool(xsd.socket, TEST_XENSTORE, ['-t', name]);
    expect(r.stdout + r.stderr).not.toMatch(/failed/);
    expect(r.code).toBe(0);
  });
});
