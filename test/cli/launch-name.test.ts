import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { domainNameFromArgs } from '../../src/cli/commands/launch.js';

const dir = mkdtempSync(join(tmpdir(), 'xbd-i14-launch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('launch: the new domain\'s name', () => {
  it('comes from the xl config file, or a name= override after it', () => {
    const cfg = join(dir, 'web.cfg');
    writeFileSync(cfg, '# a guest\nmemory = 512\nname = "web-7"   # its name\nvcpus = 1\n');
    expect(domainNameFromArgs(['create', cfg])).toBe('web-7');
    expect(domainNameFromArgs(['create', '-q', cfg, 'name=other'])).toBe('other');
    expect(domainNameFromArgs(['create', join(dir, 'missing.cfg')])).toBeNull();
    expect(domainNameFromArgs(['list'])).toBeNull();
    expect(domainNameFromArgs(['sim-create', '--dir', '/tmp/sim', '--name', 'web-3', '--memory', '512M'])).toBe('web-3');
  });
});
