/**
 * What the in-process xenstored tests share: a server with dom0's initial tree, guests
 * introduced as xl would, and the xenstore error code a request fails with.
 */
import {
  initDom0,
  provisionDomain,
  XenstoredServer,
  XsRequestError,
  type XenstoreSession,
} from '../../../src/sim/xenstored/index.js';

/** A fresh server and a dom0 session on it, with xenstored's initial tree and dom0's home. */
export function serverWithDom0(): { server: XenstoredServer; dom0: XenstoreSession } {
  const server = new XenstoredServer();
  const dom0 = server.session(0);
  initDom0(dom0);
  return { server, dom0 };
}

/** Provisions and introduces guest `domid` (as xl does) and opens a session acting as it. */
export function introduceGuest(server: XenstoredServer, dom0: XenstoreSession, domid: number): XenstoreSession {
  provisionDomain(dom0, domid);
  dom0.introduceDomain(domid);
  return server.session(domid);
}

/** The xenstore error code (ENOENT, EACCES…) `fn` fails with, or undefined when it succeeds. */
export function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof XsRequestError) return err.code;
    throw err;
  }
  return undefined;
}
