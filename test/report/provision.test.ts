import { describe, expect, it } from 'vitest';
import { guestOwnedPerms, provisionGuestNodes } from '../../src/report/provision.js';
import type { XenstoreNodeOps, XsPermission } from '../../src/xen/xenstore-types.js';

class NotFound extends Error {
  readonly code = 'ENOENT';
}

/** An in-memory store with xenstored's rules that matter here: mkdir makes parents, which
 * inherit their parent's permissions; ENOENT for missing nodes. */
class FakeStore implements XenstoreNodeOps {
  readonly nodes = new Map<string, XsPermission[]>([['/', [{ domid: 0, perm: 'none' }]]]);
  calls: string[] = [];

  async mkdir(path: string): Promise<void> {
    this.calls.push(`mkdir ${path}`);
    const parts = path.split('/').filter(Boolean);
    let cur = '';
    let parent = this.nodes.get('/') as XsPermission[];
    for (const p of parts) {
      cur += `/${p}`;
      const existing = this.nodes.get(cur);
      if (existing === undefined) this.nodes.set(cur, parent.map((x) => ({ ...x })));
      parent = this.nodes.get(cur) as XsPermission[];
    }
  }

  async getPermissions(path: string): Promise<XsPermission[]> {
    const p = this.nodes.get(path);
    if (p === undefined) throw new NotFound(path);
    return p.map((x) => ({ ...x }));
  }

  async setPermissions(path: string, perms: XsPermission[]): Promise<void> {
    this.calls.push(`chmod ${path}`);
    if (!this.nodes.has(path)) throw new NotFound(path);
    this.nodes.set(path, perms.map((x) => ({ ...x })));
  }
}

/** A domain as libxl leaves it: home owned by dom0 readable by the guest, data/ owned by it. */
function libxlDomain(store: FakeStore, domid: number): void {
  store.nodes.set('/local', [{ domid: 0, perm: 'none' }]);
  store.nodes.set('/local/domain', [{ domid: 0, perm: 'none' }]);
  store.nodes.set(`/local/domain/${domid}`, [{ domid: 0, perm: 'none' }, { domid, perm: 'read' }]);
  store.nodes.set(`/local/domain/${domid}/data`, [{ domid, perm: 'none' }]);
  store.nodes.set(`/local/domain/${domid}/memory`, [{ domid: 0, perm: 'none' }, { domid, perm: 'read' }]);
}

describe('provisioning a guest so it can publish', () => {
  it('creates data/xenballoon owned by the guest, readable by dom0', async () => {
    const store = new FakeStore();
    libxlDomain(store, 7);
    const r = await provisionGuestNodes(store, 7);
    expect(r).toEqual({ created: ['/local/domain/7/data/xenballoon'], fixed: [], unchanged: [] });
    expect(store.nodes.get('/local/domain/7/data/xenballoon')).toEqual(guestOwnedPerms(7));
    expect(guestOwnedPerms(7)).toEqual([{ domid: 7, perm: 'none' }, { domid: 0, perm: 'read' }]);
  });

  it('is idempotent: a second run changes nothing', async () => {
    const store = new FakeStore();
    libxlDomain(store, 7);
    await provisionGuestNodes(store, 7);
    store.calls = [];
    const r = await provisionGuestNodes(store, 7);
    expect(r).toEqual({ created: [], fixed: [], unchanged: ['/local/domain/7/data/xenballoon'] });
    expect(store.calls).toEqual([]);
  });

  it('works where no toolstack made data/ (the parents stay dom0\'s)', async () => {
    const store = new FakeStore();
    await provisionGuestNodes(store, 3);
    expect(store.nodes.get('/local/domain/3/data/xenballoon')?.[0]).toEqual({ domid: 3, perm: 'none' });
    expect(store.nodes.get('/local/domain/3/data')?.[0]?.domid).toBe(0);
  });

  it('gives a node that exists with another owner to the guest, and leaves extra entries of a guest-owned one', async () => {
    const store = new FakeStore();
    libxlDomain(store, 7);
    store.nodes.set('/local/domain/7/data/xenballoon', [{ domid: 0, perm: 'read' }]);
    expect((await provisionGuestNodes(store, 7)).fixed).toEqual(['/local/domain/7/data/xenballoon']);
    const custom: XsPermission[] = [{ domid: 7, perm: 'none' }, { domid: 5, perm: 'read' }];
    store.nodes.set('/local/domain/7/data/xenballoon', custom);
    await provisionGuestNodes(store, 7);
    expect(store.nodes.get('/local/domain/7/data/xenballoon')).toEqual(custom);
  });

  it("pre-creates the paper's and Qubes' memory/ nodes for legacy guests when asked", async () => {
    const store = new FakeStore();
    libxlDomain(store, 9);
    const r = await provisionGuestNodes(store, 9, { legacyMemoryNodes: true });
    expect(r.created).toEqual([
      '/local/domain/9/data/xenballoon',
      '/local/domain/9/memory/meminfo',
      '/local/domain/9/memory/vmstat',
      '/local/domain/9/memory/uptime',
    ]);
    expect(store.nodes.get('/local/domain/9/memory/meminfo')?.[0]).toEqual({ domid: 9, perm: 'none' });
    expect(store.nodes.get('/local/domain/9/memory')?.[0]?.domid).toBe(0);
  });

  it('passes on errors other than ENOENT, and refuses ids that are not guests', async () => {
    const store = new FakeStore();
    store.getPermissions = async () => {
      throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
    };
    await expect(provisionGuestNodes(store, 7)).rejects.toThrow('EACCES');
    await expect(provisionGuestNodes(store, 0)).rejects.toThrow(RangeError);
    await expect(provisionGuestNodes(store, 0x7ff0)).rejects.toThrow(RangeError);
    await expect(provisionGuestNodes(store, 1.5)).rejects.toThrow(RangeError);
  });
});
