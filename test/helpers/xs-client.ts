/**
 * A minimal xenstore client over a unix socket, built on src/wire, for tests that need to see
 * the protocol itself: pipelined requests, raw frames, malformed input, watch events as they
 * arrive. Not a substitute for the libxenstore binding.
 */
import { createConnection, type Socket } from 'node:net';
import { decodeStrings, encodeFrame, encodeStrings, FrameDecoder, XsType, type Frame } from '../../src/wire/index.js';

export interface Reply {
  type: number;
  payload: Buffer;
  /** For ERROR replies, the error name. */
  error?: string;
}

export class XsTestClient {
  private readonly decoder = new FrameDecoder();
  private readonly pending = new Map<number, (r: Reply) => void>();
  private nextReq = 1;
  readonly events: Array<{ path: string; token: string }> = [];
  private eventWaiters: Array<() => void> = [];
  closed = false;
  private closeWaiters: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) this.onFrame(f);
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.closeWaiters) w();
      for (const [, resolve] of this.pending) resolve({ type: -1, payload: Buffer.alloc(0), error: 'closed' });
      this.pending.clear();
    });
    socket.on('error', () => undefined);
  }

  static connect(path: string): Promise<XsTestClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(new XsTestClient(s)));
      s.once('error', reject);
    });
  }

  /** Sends a request and resolves with its reply (ERROR replies resolve too, with `error`). */
  request(type: number, payload: Buffer, txId = 0): Promise<Reply> {
    const reqId = this.nextReq++;
    const p = new Promise<Reply>((resolve) => this.pending.set(reqId, resolve));
    this.socket.write(encodeFrame({ type, reqId, txId, payload }));
    return p;
  }

  /** Sends strings (each NUL-terminated) as a request's payload. */
  call(type: number, strings: string[], txId = 0): Promise<Reply> {
    return this.request(type, encodeStrings(strings), txId);
  }

  async read(path: string, txId = 0): Promise<string> {
    const r = await this.call(XsType.READ, [path], txId);
    if (r.error) throw new Error(`read ${path}: ${r.error}`);
    return r.payload.toString('latin1');
  }

  async write(path: string, value: string, txId = 0): Promise<void> {
    const r = await this.request(XsType.WRITE, Buffer.concat([Buffer.from(`${path}\0`), Buffer.from(value)]), txId);
    if (r.error) throw new Error(`write ${path}: ${r.error}`);
  }

  /** Sends raw bytes (not necessarily a valid frame). */
  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Resolves when at least `n` watch events have arrived. */
  async waitForEvents(n: number): Promise<void> {
    while (this.events.length < n) {
      if (this.closed) throw new Error(`connection closed after ${this.events.length} of ${n} events`);
      await new Promise<void>((resolve) => {
        this.eventWaiters.push(resolve);
        this.closeWaiters.push(resolve);
      });
    }
  }

  /** Resolves when the server has closed the connection. */
  waitForClose(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  close(): void {
    this.socket.destroy();
  }

  private onFrame(f: Frame): void {
    if (f.type === XsType.WATCH_EVENT) {
      const [path, token] = decodeStrings(f.payload) as [string, string];
      this.events.push({ path, token });
      const waiters = this.eventWaiters;
      this.eventWaiters = [];
      for (const w of waiters) w();
      return;
    }
    const resolve = this.pending.get(f.reqId);
    if (!resolve) return;
    this.pending.delete(f.reqId);
    resolve({
      type: f.type,
      payload: f.payload,
      error: f.type === XsType.ERROR ? decodeStrings(f.payload)[0] : undefined,
    });
  }
}
