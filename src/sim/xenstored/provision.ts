/**
 * What the toolstack writes into xenstore for dom0 and for a new guest, reproduced so that a
 * guest on our server sees the permissions it would see under xl/libxl (libxl__domain_make):
 * - `/local/domain/<id>` and its `cpu/`, `memory/`, `device/`, `control/` are owned by dom0
 *   and readable by the guest (`n0 r<id>`): it cannot write `memory/target` or add keys at its
 *   top level;
 * - `data/`, `drivers/`, `feature/`, `attr/`, `error/`, `control/shutdown` & co. and
 *   `device/suspend/event-channel` are owned by the guest (`n<id>`): it writes there, other
 *   guests see nothing.
 */
import type { XsPermission } from '../../xen/xenstore-types.js';
import type { XenstoreSession } from './session.js';

export interface ProvisionOptions {
  /** Domain name (`name`); default `domain-<id>`. */
  name?: string;
  /** Writes `memory/static-max` (KiB). */
  staticMaxKiB?: number;
  /** Writes `memory/target` (KiB). */
  targetKiB?: number;
}

const GUEST_OWNED = ['data', 'drivers', 'feature', 'attr', 'error'];
const GUEST_CONTROL = ['shutdown', 'feature-poweroff', 'feature-reboot', 'feature-suspend', 'sysrq'];

/** As xen-init-dom0: `/local/domain/0` with `domid` and `name`, owned by dom0, hidden from guests. */
export function initDom0(dom0: XenstoreSession, name = 'Domain-0'): void {
  dom0.transaction((tx) => {
    dom0.write('/local/domain/0/domid', '0', tx);
    dom0.write('/local/domain/0/name', name, tx);
  });
}

/**
 * Creates (or recreates) a guest's home as libxl does, through a privileged session, in one
 * transaction. Does not introduce the domain.
 */
export function provisionDomain(dom0: XenstoreSession, domid: number, options: ProvisionOptions = {}): void {
  if (!dom0.privileged) throw new Error('provisionDomain needs a privileged (dom0) session');
  const home = `/local/domain/${domid}`;
  const ro: XsPermission[] = [
    { domid: 0, perm: 'none' },
    { domid, perm: 'read' },
  ];
  const rw: XsPermission[] = [{ domid, perm: 'none' }];
  dom0.transaction((tx) => {
    if (dom0.exists(home, tx)) dom0.rm(home, tx);
    dom0.mkdir(home, tx);
    dom0.setPermissions(home, ro, tx);
    dom0.write(`${home}/domid`, String(domid), tx);
    dom0.write(`${home}/name`, options.name ?? `domain-${domid}`, tx);
    for (const dir of ['cpu', 'memory', 'device', 'control']) {
      dom0.mkdir(`${home}/${dir}`, tx);
    }
    for (const key of [...GUEST_CONTROL.map((k) => `control/${k}`), 'device/suspend/event-channel']) {
      dom0.mkdir(`${home}/${key}`, tx);
      dom0.setPermissions(`${home}/${key}`, rw, tx);
    }
    for (const dir of GUEST_OWNED) {
      dom0.mkdir(`${home}/${dir}`, tx);
      dom0.setPermissions(`${home}/${dir}`, rw, tx);
    }
    dom0.write(`${home}/control/platform-feature-multiprocessor-suspend`, '1', tx);
    dom0.write(`${home}/control/platform-feature-xs_reset_watches`, '1', tx);
    if (options.staticMaxKiB !== undefined) dom0.write(`${home}/memory/static-max`, String(options.staticMaxKiB), tx);
    if (options.targetKiB !== undefined) dom0.write(`${home}/memory/target`, String(options.targetKiB), tx);
  });
}
