// The libxenctrl struct layouts the binding hard-codes, checked against the installed Xen
// headers (libxen-dev, installed by `make setup`): a C program prints offsetof/sizeof and fills
// sample structs through the headers' own field names; the TypeScript tables and decoders must
// agree with both.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainInfo } from '../../src/xen/hypervisor.js';
import {
  DOMID_FIRST_RESERVED,
  XENCTRL_LAYOUTS,
  XENVER_EXTRAVERSION,
  XENVER_VERSION,
  XEN_EXTRAVERSION_LEN,
  decodeDomaininfo,
  decodePhysinfo,
  layoutFor,
  listAllDomains,
  releaseFromVersion,
  type XenctrlLayout,
} from '../../src/xen/xenctrl-layout.js';
import { XenctrlOpenError, layoutForVersion } from '../../src/xen/xenctrl.js';
import { UserError } from '../../src/cli/errors.js';

interface HeaderFacts {
  interfaces: { domctl: number; sysctl: number };
  physinfo: XenctrlLayout['physinfo'];
  domaininfo: XenctrlLayout['domaininfo'];
  dominf: XenctrlLayout['dominf'];
  xenver: { version: number; extraversion: number; extraversionLen: number };
  domidFirstReserved: number;
  samplePhysinfo: string;
  sampleDomaininfo: string;
}

const source = fileURLToPath(new URL('./xenctrl-layout.c', import.meta.url));
let dir: string;
let facts: HeaderFacts;
let layout: XenctrlLayout;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'xenctrl-layout-'));
  const exe = join(dir, 'layout');
  execFileSync('gcc', ['-Wall', '-Werror', '-o', exe, source], { stdio: ['ignore', 'ignore', 'inherit'] });
  facts = JSON.parse(execFileSync(exe, { encoding: 'utf8' })) as HeaderFacts;
  // The release whose interface versions are the installed headers' ones.
  const match = Object.values(XENCTRL_LAYOUTS).find(
    (l) => l.interfaces.domctl === facts.interfaces.domctl && l.interfaces.sysctl === facts.interfaces.sysctl,
  );
  if (!match) throw new Error(`no layout for the installed headers' interfaces ${JSON.stringify(facts.interfaces)}`);
  layout = match;
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('xenctrl layouts vs the installed headers', () => {
  it('the struct sizes and field offsets are the headers\' ones', () => {
    expect(layout.physinfo).toEqual(facts.physinfo);
    expect(layout.domaininfo).toEqual(facts.domaininfo);
    expect(layout.dominf).toEqual(facts.dominf);
  });

  it('the constants are the headers\' ones', () => {
    expect({ version: XENVER_VERSION, extraversion: XENVER_EXTRAVERSION, extraversionLen: XEN_EXTRAVERSION_LEN }).toEqual(
      facts.xenver,
    );
    expect(DOMID_FIRST_RESERVED).toBe(facts.domidFirstReserved);
  });

  it('the installed libxenctrl is the soname this layout names', () => {
    const dev = execFileSync('gcc', ['-print-file-name=libxenctrl.so'], { encoding: 'utf8' }).trim();
    expect(basename(realpathSync(dev)).startsWith(layout.library)).toBe(true);
  });

  it('decodes a physinfo struct filled by C', () => {
    expect(decodePhysinfo(Buffer.from(facts.samplePhysinfo, 'hex'), layout)).toEqual({
      totalKib: 0x123456789 * 4,
      freeKib: 400000 * 4,
      scrubKib: 3000 * 4,
      outstandingKib: 20 * 4,
    });
  });

  it('decodes an array of domaininfo structs filled by C, flags included', () => {
    const buf = Buffer.from(facts.sampleDomaininfo, 'hex');
    expect(buf.length).toBe(2 * layout.domaininfo.size);
    expect(decodeDomaininfo(buf, 0, layout)).toEqual({
      domid: 7,
      totKib: 32768 * 4,
      maxKib: 65792 * 4,
      outstandingKib: 20,
      dying: false,
      shutdown: true,
      shutdownReason: 3,
      hvm: false,
      paused: true,
    });
    expect(decodeDomaininfo(buf, 1, layout)).toEqual({
      domid: 0x7fef,
      totKib: 4,
      maxKib: 0xffffffffff * 4,
      outstandingKib: 0,
      dying: true,
      shutdown: false,
      shutdownReason: 0,
      hvm: true,
      paused: false,
    });
    expect(() => decodeDomaininfo(buf, 2, layout)).toThrow(RangeError);
  });
});

describe('xenctrl release checks', () => {
  it('reads major.minor from xc_version', () => {
    expect(releaseFromVersion((4 << 16) | 17)).toBe('4.17');
    expect(releaseFromVersion((4 << 16) | 18)).toBe('4.18');
  });

  it('knows 4.17 on x64 only', () => {
    expect(layoutFor('4.17', 'x64')).toBe(XENCTRL_LAYOUTS['4.17']);
    expect(layoutFor('4.18', 'x64')).toBeNull();
    expect(layoutFor('4.17', 'arm64')).toBeNull();
  });

  it('refuses an unverified release with one clear line', () => {
    let caught: unknown;
    try {
      layoutForVersion((4 << 16) | 18, 'x64');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(XenctrlOpenError);
    expect(caught).toBeInstanceOf(UserError);
    const e = caught as XenctrlOpenError;
    expect(e.failure).toBe('version');
    expect(e.message).toMatch(/^unsupported Xen 4\.18 on x64: .*verified for Xen 4\.17 on x64 only$/);
    expect(e.message).not.toContain('\n');
    expect(layoutForVersion((4 << 16) | 17, 'x64')).toBe(XENCTRL_LAYOUTS['4.17']);
  });
});

describe('listAllDomains', () => {
  const dom = (domid: number): DomainInfo => ({
    domid,
    totKib: 4,
    maxKib: 4,
    outstandingKib: 0,
    dying: false,
    shutdown: false,
    shutdownReason: 0,
    hvm: false,
    paused: false,
  });
  /** A fake xc_domain_getinfolist over sparse domids, recording what it was asked. */
  function source(ids: number[]) {
    const calls: Array<[number, number]> = [];
    const fetch = async (first: number, max: number) => {
      calls.push([first, max]);
      return ids.filter((id) => id >= first).slice(0, max).map(dom);
    };
    return { calls, fetch };
  }

  it('fetches batches after the last domid seen until a short batch', async () => {
    const ids = Array.from({ length: 600 }, (_, i) => i * 3);
    const s = source(ids);
    const got = await listAllDomains(s.fetch, 256);
    expect(got.map((d) => d.domid)).toEqual(ids);
    expect(s.calls).toEqual([
      [0, 256],
      [255 * 3 + 1, 256],
      [511 * 3 + 1, 256],
    ]);
  });

  it('asks once more when the list is an exact multiple of the batch', async () => {
    const s = source([0, 1, 2, 3]);
    expect((await listAllDomains(s.fetch, 2)).map((d) => d.domid)).toEqual([0, 1, 2, 3]);
    expect(s.calls).toEqual([
      [0, 2],
      [2, 2],
      [4, 2],
    ]);
  });

  it('drops reserved domids and stops at the reserved range', async () => {
    const s = source([0, 5, 0x7fef, 0x7ff0, 0x7ff1]);
    expect((await listAllDomains(s.fetch, 2)).map((d) => d.domid)).toEqual([0, 5, 0x7fef]);
  });

  it('refuses a source that goes backwards instead of looping', async () => {
    const fetch = async (first: number) => [dom(first), dom(0)];
    await expect(listAllDomains(fetch, 2)).rejects.toThrow(/went backwards/);
  });
});
