/**
 * The `sim:PATH` hypervisor backend: a client of the simulated host's hypervisor.sock
 * (src/sim/sim-host/protocol.ts, docs/simulator.md). It implements the daemon's Hypervisor
 * interface (physinfo, domains, setMaxmem) and, for launchers and tests, what a toolstack adds:
 * create and destroy a domain, inspect or change a simulated guest.
 *
 * Every request has a timeout, so a hung or dead simulator never hangs the caller; a lost
 * connection fails the requests in flight and every later one with code ECONNRESET.
 */
import { createConnection, type Socket } from 'node:net';
import type { DomainInfo, Hypervisor, PhysInfo } from './hypervisor.js';
import { type HvDomain, type HvGuest, type HvHello, type HvReply, type HvResults, MAX_LINE_BYTES } from '../sim/sim-host/protocol.js';

export type SimHypervisorErrorCode = 'EINVAL' | 'ENOENT' | 'ENOMEM' | 'EEXIST' | 'EBUSY' | 'ESHUTDOWN' | 'EPERM' | 'ETIMEDOUT' | 'ECONNRESET' | 'ECONNREFUSED' | 'EPROTO';

export class SimHypervisorError extends Error {
  constructor(readonly code: SimHypervisorErrorCode, message: string) {
    super(message);
    this.name = 'SimHypervisorError';
  }
}

export interface SimHypervisorOptions {
  /** Per request, ms (default 10 s). */
  timeoutMs?: number;
  /** For `create`, which answers once the domain is built (default 120 s). */
  createTimeoutMs?: number;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export interface CreateDomainRequest {
  name: string;
  memoryKib: number;
  maxmemKib: number;
  /** A guest template of the running scenario (default: its first). */
  template?: string;
}

export class SimHypervisor implements Hypervisor {
  readonly version = 'sim';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buf = '';
  private dead: SimHypervisorError | null = null;
  private corked = false;

  private constructor(private readonly socket: Socket, private readonly opts: Required<SimHypervisorOptions>) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(new SimHypervisorError('ECONNRESET', `hypervisor.sock: ${err.code ?? err.message}`)));
    socket.on('close', () => this.fail(new SimHypervisorError('ECONNRESET', 'hypervisor.sock closed the connection')));
  }

  /** Connects to `path` (a simulated host's hypervisor.sock). */
  static connect(path: string, options: SimHypervisorOptions = {}): Promise<SimHypervisor> {
    const opts = { timeoutMs: options.timeoutMs ?? 10_000, createTimeoutMs: options.createTimeoutMs ?? 120_000 };
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new SimHypervisorError('ETIMEDOUT', `no answer from ${path} within ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new SimHypervisor(socket, opts));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const code = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'ECONNREFUSED' : 'ECONNRESET';
        reject(new SimHypervisorError(code, `cannot connect to ${path}: ${err.code ?? err.message} (is sim-host running?)`));
      });
    });
  }

  async hello(): Promise<HvHello> {
    return this.request('hello', {});
  }

  async physinfo(): Promise<PhysInfo> {
    const p = await this.request('physinfo', {});
    return { totalKib: p.total_kib, freeKib: p.free_kib, scrubKib: p.scrub_kib, outstandingKib: p.outstanding_kib };
  }

  async domains(): Promise<DomainInfo[]> {
    const r = await this.request('domains', {});
    return r.domains.map(toDomainInfo);
  }

  /** The raw list, with names and build state (not part of the Hypervisor interface). */
  async domainList(): Promise<HvDomain[]> {
    return (await this.request('domains', {})).domains;
  }

  async setMaxmem(domid: number, kib: number): Promise<void> {
    await this.request('setmaxmem', { domid, kib: Math.floor(kib) });
  }

  /** xl create: resolves with the domid once the domain is built and holds its memory. */
  async createDomain(req: CreateDomainRequest): Promise<number> {
    const params: Record<string, unknown> = { name: req.name, memory_kib: req.memoryKib, maxmem_kib: req.maxmemKib };
    if (req.template !== undefined) params.template = req.template;
    return (await this.request('create', params, this.opts.createTimeoutMs)).domid;
  }

  async destroyDomain(domid: number): Promise<void> {
    await this.request('destroy', { domid });
  }

  async guest(domid: number): Promise<HvGuest> {
    return this.request('guest', { domid });
  }

  /** Changes a guest's workload and/or balloon driver, in scenario-file terms. */
  async setGuest(domid: number, change: { workload?: Record<string, unknown>; balloon?: Record<string, unknown> }): Promise<void> {
    await this.request('set-guest', { domid, ...change });
  }

  async time(): Promise<{ now_ms: number; speed: number }> {
    return this.request('time', {});
  }

  async close(): Promise<void> {
    this.fail(new SimHypervisorError('ECONNRESET', 'closed'));
    if (!this.socket.destroyed) {
      await new Promise<void>((resolve) => {
        this.socket.once('close', () => resolve());
        this.socket.end();
        setTimeout(() => {
          this.socket.destroy();
          resolve();
        }, 1000).unref();
      });
    }
  }

  private request<K extends keyof HvResults>(op: K, params: Record<string, unknown>, timeoutMs = this.opts.timeoutMs): Promise<HvResults[K]> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SimHypervisorError('ETIMEDOUT', `hypervisor.sock: no answer to ${op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      // Requests made in the same tick (the daemon asks physinfo and domains together) leave
      // in one write: each write is a syscall and a wake-up of the simulator.
      if (!this.corked) {
        this.corked = true;
        this.socket.cork();
        process.nextTick(() => {
          this.corked = false;
          this.socket.uncork();
        });
      }
      this.socket.write(JSON.stringify({ id, op, ...params }) + '\n');
    });
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let reply: HvReply;
      try {
        reply = JSON.parse(line) as HvReply;
      } catch {
        this.fail(new SimHypervisorError('EPROTO', 'hypervisor.sock sent a line that is not JSON'));
        this.socket.destroy();
        return;
      }
      if (typeof reply.id !== 'number') continue;
      const p = this.pending.get(reply.id);
      if (!p) continue;
      this.pending.delete(reply.id);
      clearTimeout(p.timer);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new SimHypervisorError(reply.error.code, reply.error.message));
    }
    if (this.buf.length > MAX_LINE_BYTES) {
      this.fail(new SimHypervisorError('EPROTO', 'hypervisor.sock sent an overlong line'));
      this.socket.destroy();
    }
  }

  private fail(err: SimHypervisorError): void {
    if (!this.dead) this.dead = err;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
  }
}

function toDomainInfo(d: HvDomain): DomainInfo {
  return {
    domid: d.domid,
    totKib: d.tot_kib,
    maxKib: d.max_kib,
    outstandingKib: d.outstanding_kib,
    dying: d.dying,
    shutdown: d.shutdown,
    shutdownReason: d.shutdown_reason,
    hvm: d.hvm,
    paused: d.paused,
  };
}
