/**
 * The server side of hypervisor.sock (protocol.ts): newline-delimited JSON requests, each
 * answered with its id as soon as it is done (a `create` answers once the domain is built).
 * A malformed request gets an EINVAL reply and the connection stays usable; a line longer than
 * MAX_LINE_BYTES closes the connection. Errors of one client never reach the others.
 */
import { chmod } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { prepareSocketPath } from '../xenstored/server.js';
import { type HvErrorCode, type HvReply, MAX_LINE_BYTES, requestSchema, SimHostError } from './protocol.js';
import type { SimHost } from './runtime.js';

export class HypervisorSocketServer {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly host: SimHost, private readonly log: Logger) {}

  async listen(path: string): Promise<void> {
    await prepareSocketPath(path);
    const server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err }, 'hypervisor.sock failed'));
    await chmod(path, 0o600).catch(() => undefined);
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() !== '') void this.handle(socket, line);
      }
      if (Buffer.byteLength(buf) > MAX_LINE_BYTES) {
        this.reply(socket, { id: null, ok: false, error: { code: 'EINVAL', message: `request longer than ${MAX_LINE_BYTES} bytes` } });
        socket.end();
        buf = '';
      }
    });
  }

  private reply(socket: Socket, r: HvReply): void {
    if (!socket.destroyed && socket.writable) socket.write(JSON.stringify(r) + '\n');
  }

  private async handle(socket: Socket, line: string): Promise<void> {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      this.reply(socket, { id: null, ok: false, error: { code: 'EINVAL', message: 'not JSON: one JSON object per line' } });
      return;
    }
    const rawId = (raw as { id?: unknown } | null)?.id;
    const id = typeof rawId === 'number' || typeof rawId === 'string' ? rawId : null;
    const parsed = requestSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      this.reply(socket, { id, ok: false, error: { code: 'EINVAL', message: `${where}${issue?.message ?? 'bad request'}` } });
      return;
    }
    const req = parsed.data;
    const h = this.host;
    try {
      let result: unknown;
      switch (req.op) {
        case 'hello': result = h.hello(); break;
        case 'physinfo': result = h.physinfo(); break;
        case 'domains': result = { domains: h.domains() }; break;
        case 'setmaxmem': h.setMaxmem(req.domid, req.kib); result = {}; break;
        case 'create': result = { domid: await h.createDomain({ name: req.name, memoryKib: req.memory_kib, maxmemKib: req.maxmem_kib, template: req.template }) }; break;
        case 'destroy': h.destroyDomain(req.domid); result = {}; break;
        case 'guest': result = h.guest(req.domid); break;
        case 'set-guest': h.setGuest(req.domid, { workload: req.workload, balloon: req.balloon }); result = {}; break;
        case 'time': result = h.time(); break;
      }
      this.reply(socket, { id: req.id, ok: true, result });
    } catch (err) {
      const code: HvErrorCode = err instanceof SimHostError ? err.code : 'EINVAL';
      if (!(err instanceof SimHostError)) this.log.error({ err, op: req.op }, 'request failed');
      this.reply(socket, { id: req.id, ok: false, error: { code, message: (err as Error).message } });
    }
  }
}
