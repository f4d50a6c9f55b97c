// The libxenctrl backend where this test suite runs: a machine without a hypervisor, so opening
// must fail with one clear line. (The lab, `make lab-smoke`, exercises it on real Xen.)
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/cli/errors.js';
import { XenctrlHypervisor, XenctrlOpenError } from '../../src/xen/xenctrl.js';

const onXen = existsSync('/dev/xen/privcmd') || existsSync('/proc/xen/privcmd');

async function openError(options?: Parameters<typeof XenctrlHypervisor.open>[0]): Promise<XenctrlOpenError> {
  try {
    const hv = await XenctrlHypervisor.open(options);
    await hv.close();
  } catch (err) {
    expect(err).toBeInstanceOf(XenctrlOpenError);
    return err as XenctrlOpenError;
  }
  throw new Error('XenctrlHypervisor.open() succeeded');
}

describe('XenctrlHypervisor.open outside Xen', () => {
  it.skipIf(onXen)('fails with the reason and what to check, in one line', async () => {
    const e = await openError();
    expect(e).toBeInstanceOf(UserError);
    expect(e.failure).toBe('interface');
    expect(e.errnoCode).toBe('ENOENT');
    expect(e.message).toBe(
      'cannot open libxenctrl: no hypervisor interface at /dev/xen/privcmd: no such file or directory (ENOENT)' +
        ' — is this dom0 of a Xen host, running as root?',
    );
  });

  it('names a missing library', async () => {
    const e = await openError({ library: 'libxenctrl-not-installed.so.9' });
    expect(e.failure).toBe('library');
    expect(e.message).toMatch(
      /^cannot open libxenctrl: libxenctrl-not-installed\.so\.9 not found .* — is this dom0 of a Xen host, running as root\?$/,
    );
    expect(e.message).not.toContain('\n');
  });
});
