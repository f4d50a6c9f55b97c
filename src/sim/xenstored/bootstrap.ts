/**
 * The standard start-up of a simulated host's xenstore: dom0's home, then for each guest a
 * libxl-like home and its introduction, and only then the sockets (dom0's first), so that a
 * client who finds a socket answering finds the store fully set up. Shared by
 * `xenballoonctl xenstored` and the test helpers so they behave the same.
 */
import { initDom0, provisionDomain } from './provision.js';
import type { XenstoredServer } from './server.js';

export interface DomainSocketSpec {
  domid: number;
  path: string;
}

export async function bootServer(server: XenstoredServer, socket: string, domains: readonly DomainSocketSpec[]): Promise<void> {
  const dom0 = server.session(0);
  try {
    initDom0(dom0);
    for (const d of domains) {
      provisionDomain(dom0, d.domid);
      dom0.introduceDomain(d.domid);
    }
  } finally {
    dom0.close();
  }
  await server.listen(socket);
  for (const d of domains) await server.addDomainSocket(d.domid, d.path);
}
