import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { packagePath, packageRoot } from '../../src/paths.js';
import { VERSION, versionLine } from '../../src/version.js';

const checkout = fileURLToPath(new URL('../../', import.meta.url));

describe('src/version.ts and src/paths.ts', () => {
  it('finds the checkout as the package root (where config/policy.yaml is)', () => {
    expect(join(packageRoot(), '/')).toBe(checkout);
    expect(existsSync(packagePath('config', 'scenarios', 'paper-idle-2g.yaml'))).toBe(true);
  });

  it('takes the version from package.json, and says which node runs it', () => {
    const pkg = JSON.parse(readFileSync(join(checkout, 'package.json'), 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
    expect(versionLine('xenballoond')).toBe(`xenballoond ${pkg.version} (node ${process.version})`);
  });
});
