/**
 * XenstoredServer: the protocol engine behind unix sockets. `listen()` opens dom0's (privileged)
 * socket; `addDomainSocket()` opens a socket whose clients act as that domain, as a guest's
 * kernel connection would. In-process sessions (`session()`) reach the same store and watches
 * without any socket. Meant to be embedded (the simulator) as well as run by
 * `xenballoonctl xenstored`.
 */
import { chmod, lstat, stat, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';
import { XenstoreCore, type CoreStats } from './core.js';
import type { XenstoredLimits } from './limits.js';
import { XenstoreSession, type SessionOptions } from './session.js';
import { SocketConnection } from './socket-connection.js';

/** sizeof(sockaddr_un.sun_path) - 1 on Linux. */
export const MAX_SOCKET_PATH_BYTES = 107;

/** A socket path cannot be used; the message says why and what to do. */
export class SocketPathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SocketPathError';
  }
}

export interface XenstoredServerOptions {
  logger?: Logger;
  limits?: Partial<XenstoredLimits>;
}

interface Listener {
  server: Server;
  path: string;
  domid: number;
  sockets: Set<SocketConnection>;
}

export class XenstoredServer {
  readonly core: XenstoreCore;
  private readonly log: Logger;
  private readonly listeners = new Set<Listener>();
  private readonly domainListeners = new Map<number, Listener>();
  private closed = false;
  /** Domains told once that their connections are over the limit. */
  private readonly warnedConnections = new Set<number>();

  constructor(options: XenstoredServerOptions = {}) {
    this.log = options.logger ?? pino({ level: 'silent' });
    this.core = new XenstoreCore({ logger: this.log, limits: options.limits });
  }

  /** Opens dom0's socket: its clients are privileged, relative paths are under /local/domain/0. */
  async listen(path: string): Promise<void> {
    await this.open(path, 0);
  }

  /** Opens a socket whose clients act as domain `domid` (permissions and quotas enforced). */
  async addDomainSocket(domid: number, path: string): Promise<void> {
    if (!Number.isInteger(domid) || domid < 0 || domid >= 0x7ff0) throw new RangeError(`invalid domid ${domid}`);
    if (this.domainListeners.has(domid)) throw new Error(`domain ${domid} already has a socket`);
    const l = await this.open(path, domid);
    this.domainListeners.set(domid, l);
  }

  /** Closes a domain's socket and drops its clients. */
  async removeDomainSocket(domid: number): Promise<void> {
    const l = this.domainListeners.get(domid);
    if (!l) return;
    this.domainListeners.delete(domid);
    await this.shut(l);
  }

  /** Socket path of each domain socket, by domid. */
  domainSocketPaths(): Map<number, string> {
    return new Map([...this.domainListeners].map(([d, l]) => [d, l.path]));
  }

  /** An in-process client acting as `domid` (0: privileged). Close it when done. */
  session(domid = 0, options?: SessionOptions): XenstoreSession {
    return new XenstoreSession(this.core, domid, options);
  }

  /** Marks a domain introduced and fires @introduceDomain (as dom0's INTRODUCE does). */
  introduceDomain(domid: number): void {
    this.core.introduceDomain(domid);
  }

  /** Releases a domain as xenstored does when it dies; false if it was not introduced. */
  releaseDomain(domid: number): boolean {
    return this.core.releaseDomain(domid);
  }

  stats(): CoreStats {
    return this.core.stats();
  }

  /** Stops listening, drops every client and removes the socket files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.domainListeners.clear();
    await Promise.all([...this.listeners].map((l) => this.shut(l)));
    this.core.dropAll('server closed');
  }

  private async open(path: string, domid: number): Promise<Listener> {
    if (this.closed) throw new Error('server is closed');
    await prepareSocketPath(path);
    const l: Listener = { server: createServer({ allowHalfOpen: true }), path, domid, sockets: new Set() };
    l.server.on('connection', (socket: Socket) => {
      if (domid !== 0 && this.core.connectionsOf(domid) >= this.core.limits.connectionsPerDomain) {
        if (!this.warnedConnections.has(domid)) {
          this.warnedConnections.add(domid);
          this.log.warn({ domid, limit: this.core.limits.connectionsPerDomain }, 'domain has too many connections: closing new ones');
        }
        socket.destroy();
        return;
      }
      const conn = new SocketConnection(this.core, socket, domid, this.log);
      l.sockets.add(conn);
      socket.on('close', () => l.sockets.delete(conn));
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(new SocketPathError(`cannot listen on ${path}: ${err.code ?? err.message}`));
      };
      l.server.once('error', onError);
      l.server.listen(path, () => {
        l.server.off('error', onError);
        resolve();
      });
    });
    l.server.on('error', (err) => this.log.error({ err, path }, 'listening socket failed'));
    // The dom0 socket of xenstored is 0600; guests' sockets get the same protection.
    await chmod(path, 0o600).catch(() => undefined);
    this.listeners.add(l);
    this.log.debug({ path, domid }, 'listening');
    return l;
  }

  private async shut(l: Listener): Promise<void> {
    this.listeners.delete(l);
    const closed = new Promise<void>((resolve) => l.server.close(() => resolve()));
    for (const c of [...l.sockets]) this.core.drop(c, 'socket closed');
    await closed;
    await unlink(l.path).catch(() => undefined);
  }
}

/**
 * Makes `path` usable for a listening socket: checks its length and directory, and removes a
 * stale socket file left by a server that died, but never a live server's socket or a file
 * that is not a socket.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new SocketPathError(
      `socket path ${path} is ${bytes} bytes; unix sockets allow at most ${MAX_SOCKET_PATH_BYTES}: choose a shorter path`,
    );
  }
  const dir = dirname(path);
  try {
    if (!(await stat(dir)).isDirectory()) throw new SocketPathError(`${dir} is not a directory: cannot create socket ${path}`);
  } catch (err) {
    if (err instanceof SocketPathError) throw err;
    throw new SocketPathError(`directory ${dir} does not exist: create it first or choose another socket path`);
  }
  let st;
  try {
    st = await lstat(path);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) throw new SocketPathError(`${path} exists and is not a socket: refusing to replace it`);
  if (await answers(path)) {
    throw new SocketPathError(`address in use: a live server answers on ${path}; stop it or choose another path`);
  }
  await unlink(path).catch(() => undefined);
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
