/**
 * The binding's tests (xenstore-binding.test.ts, xenstore-failures.test.ts) run again with the
 * watch event shim (build/lib/libxbdshim.so, built by `make build`): the same contracts hold
 * whichever waiter delivers the events.
 */
import { defaultShimPath } from '../../src/xen/xenstore-shim.js';

const shim = defaultShimPath();
if (shim === undefined) throw new Error('build/lib/libxbdshim.so is missing: run make build');
(globalThis as { xbdTestEventShim?: string }).xbdTestEventShim = shim;
await import('./xenstore-binding.test.js');
await import('./xenstore-failures.test.js');
