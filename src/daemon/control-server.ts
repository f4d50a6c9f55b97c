/**
 * The control socket: a unix stream socket, mode 0600 (root only), JSON lines. Requests on one
 * connection are answered in order; a request that waits (reserve) is cancelled when its client
 * goes away, so a crashed `xenballoonctl` does not leave a reservation pending.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  MAX_REQUEST_BYTES, RequestSchema,
  type ErrorCode, type ErrorResponse, type Request, type Response,
} from './control-protocol.js';

/**
 * Connections at once: 20k idle clients must not exhaust our fds. At the cap, a new connection
 * takes the place of the longest-idle one with no request in flight (a flood of idle clients
 * cannot lock the operator out); when every connection is busy, the new one is closed at once.
 */
export const MAX_CONNECTIONS = 64;
/** Requests of one connection being answered or queued; beyond this we stop reading it. */
export const MAX_PENDING_PER_CONNECTION = 16;
/** Answers one connection has not read yet; beyond this we stop reading its requests. */
export const MAX_UNREAD_REPLY_BYTES = 1024 * 1024;

export type ControlHandler = (req: Request, signal: AbortSignal) => Promise<Response>;

export function errorResponse(code: ErrorCode, error: string): ErrorResponse {
  return { ok: false, code, error };
}

export class ControlServerError extends Error {}

async function socketAnswers(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(p);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class ControlServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Per connection: requests in flight and when it last sent or was answered (for eviction). */
  private readonly activity = new Map<net.Socket, { pending: number; lastMs: number }>();
  private readonly controllers = new Set<AbortController>();

  private constructor(
    readonly socketPath: string,
    private readonly handler: ControlHandler,
    private readonly onError: (err: Error) => void,
  ) {
    this.server = net.createServer((sock) => this.serve(sock));
  }

  /** Listens on `socketPath`, replacing a stale socket file but never a live daemon's. */
  static async listen(socketPath: string, handler: ControlHandler, onError: (err: Error) => void): Promise<ControlServer> {
    await fs.mkdir(path.dirname(socketPath), { recursive: true, mode: 0o755 });
    try {
      const st = await fs.lstat(socketPath);
      if (!st.isSocket()) throw new ControlServerError(`${socketPath} exists and is not a socket; remove it or choose another --control path`);
      if (await socketAnswers(socketPath)) {
        throw new ControlServerError(`another xenballoond is already running (its control socket ${socketPath} answers); stop it first`);
      }
      await fs.unlink(socketPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const cs = new ControlServer(socketPath, handler, onError);
    // Created 0600 from the start: no window in which another user could connect.
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        cs.server.once('error', reject);
        cs.server.listen(socketPath, () => {
          cs.server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(oldMask);
    }
    cs.server.on('error', onError);
    return cs;
  }

  /**
   * One connection. Memory per client is bounded: requests are taken from its input only while
   * fewer than MAX_PENDING_PER_CONNECTION are in flight and it has read its answers (at most
   * MAX_UNREAD_REPLY_BYTES unread); otherwise we stop reading it, and the kernel's socket buffers
   * push back on the client. A client that pipelines requests and never reads costs us a few
   * answers, not gigabytes, and never holds up the control loop.
   */
  /** Makes room for one more connection, or returns false (every connection is busy). */
  private makeRoom(): boolean {
    if (this.sockets.size < MAX_CONNECTIONS) return true;
    let idlest: net.Socket | null = null;
    let since = Infinity;
    for (const [s, a] of this.activity) {
      if (a.pending === 0 && a.lastMs < since) {
        idlest = s;
        since = a.lastMs;
      }
    }
    if (!idlest) return false;
    idlest.destroy();
    this.sockets.delete(idlest);
    this.activity.delete(idlest);
    return true;
  }

  private serve(sock: net.Socket): void {
    if (!this.makeRoom()) {
      sock.destroy();
      return;
    }
    this.sockets.add(sock);
    const act = { pending: 0, lastMs: performance.now() };
    this.activity.set(sock, act);
    const ac = new AbortController();
    this.controllers.add(ac);
    let buf = '';
    let queue: Promise<void> = Promise.resolve();
    const done = () => {
      this.sockets.delete(sock);
      this.activity.delete(sock);
      this.controllers.delete(ac);
      ac.abort();
    };
    const congested = () => act.pending >= MAX_PENDING_PER_CONNECTION || sock.writableLength > MAX_UNREAD_REPLY_BYTES;
    const pump = () => {
      let nl: number;
      while (!congested() && (nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === '') continue;
        act.pending++;
        act.lastMs = performance.now();
        queue = queue.then(() => this.answer(line, ac.signal)).then((resp) => {
          act.pending--;
          act.lastMs = performance.now();
          if (!sock.destroyed) sock.write(JSON.stringify(resp) + '\n');
          pump();
        });
      }
      if (congested()) sock.pause();
      else if (!sock.destroyed) sock.resume();
    };
    sock.setEncoding('utf8');
    sock.on('close', done);
    sock.on('error', () => sock.destroy());
    sock.on('drain', pump);
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES && buf.indexOf('\n') < 0) {
        sock.end(JSON.stringify(errorResponse('bad-request', `request longer than ${MAX_REQUEST_BYTES} bytes`)) + '\n');
        buf = '';
        return;
      }
      pump();
    });
  }

  private async answer(line: string, signal: AbortSignal): Promise<Response> {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      return errorResponse('bad-request', 'request is not valid JSON');
    }
    const parsed = RequestSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length ? ` at ${issue.path.join('.')}` : '';
      return errorResponse('bad-request', `invalid request${where}: ${issue?.message ?? 'unknown error'}`);
    }
    try {
      return await this.handler(parsed.data, signal);
    } catch (err) {
      this.onError(err as Error);
      return errorResponse('internal', `internal error: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    for (const ac of this.controllers) ac.abort();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.end();
    setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, 1000).unref();
    await closed;
    await fs.unlink(this.socketPath).catch(() => undefined);
  }
}
