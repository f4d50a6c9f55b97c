/**
 * The client side of the control socket, used by xenballoonctl. One connection, requests sent
 * one at a time; every answer is validated against the protocol's schemas.
 */
import net from 'node:net';
import {
  ErrorResponseSchema, ResponseSchemas,
  type ErrorCode, type Request, type ResponseFor,
} from './control-protocol.js';

/** The daemon answered with an error (e.g. a reservation that cannot be met). */
export class ControlRequestError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ControlRequestError';
  }
}

/** The daemon could not be reached or broke the protocol. */
export class ControlConnectionError extends Error {
  constructor(
    message: string,
    readonly errno: string | null = null,
  ) {
    super(message);
    this.name = 'ControlConnectionError';
  }
}

export class ControlClient {
  private buf = '';
  private waiting: { resolve: (line: string) => void; reject: (err: Error) => void } | null = null;
  private closedError: Error | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly sock: net.Socket,
    readonly socketPath: string,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const w = this.waiting;
        this.waiting = null;
        w?.resolve(line);
      }
    });
    const fail = (err: Error) => {
      this.closedError ??= err;
      const w = this.waiting;
      this.waiting = null;
      w?.reject(this.closedError);
    };
    sock.on('error', (err) => fail(new ControlConnectionError(`lost the connection to xenballoond at ${socketPath}: ${err.message}`)));
    sock.on('close', () => fail(new ControlConnectionError(`xenballoond closed the control connection at ${socketPath}`)));
  }

  static connect(socketPath: string): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(socketPath);
      sock.once('connect', () => {
        sock.removeAllListeners('error');
        resolve(new ControlClient(sock, socketPath));
      });
      sock.once('error', (err: NodeJS.ErrnoException) => {
        const code = err.code ?? null;
        const hint =
          code === 'ENOENT' || code === 'ECONNREFUSED'
            ? 'is xenballoond running? (systemctl status xenballoond)'
            : code === 'EACCES'
              ? 'the control socket is root-only; run as root (sudo)'
              : err.message;
        reject(new ControlConnectionError(`cannot connect to xenballoond at ${socketPath}: ${code ?? 'error'}; ${hint}`, code));
      });
    });
  }

  /** Sends one request and returns its validated answer; an error answer throws ControlRequestError. */
  request<Op extends Request['op']>(req: Extract<Request, { op: Op }>): Promise<ResponseFor<Op>> {
    const run = async (): Promise<ResponseFor<Op>> => {
      if (this.closedError) throw this.closedError;
      const line = await new Promise<string>((resolve, reject) => {
        this.waiting = { resolve, reject };
        this.sock.write(JSON.stringify(req) + '\n');
      });
      let raw: unknown;
      try {
        raw = JSON.parse(line);
      } catch {
        throw new ControlConnectionError('xenballoond sent an answer that is not JSON');
      }
      const err = ErrorResponseSchema.safeParse(raw);
      if (err.success) throw new ControlRequestError(err.data.code, err.data.error);
      const ok = ResponseSchemas[req.op].safeParse(raw);
      if (!ok.success) {
        throw new ControlConnectionError(`xenballoond sent an unexpected answer to '${req.op}' (is it the same version as this xenballoonctl?)`);
      }
      return ok.data as ResponseFor<Op>;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  close(): void {
    this.sock.end();
    this.sock.destroy();
  }
}

/** Connects, sends one request, closes. */
export async function controlRequest<Op extends Request['op']>(
  socketPath: string,
  req: Extract<Request, { op: Op }>,
): Promise<ResponseFor<Op>> {
  const c = await ControlClient.connect(socketPath);
  try {
    return await c.request(req);
  } finally {
    c.close();
  }
}
