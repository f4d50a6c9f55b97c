/**
 * The `flooder` hostile workload: one guest rewriting many distinct xenstore nodes under its own
 * home as fast as its connections allow, the way a buggy or malicious guest would try to blind
 * dom0's daemon (issue 11). It speaks the wire protocol over the guest's own socket of a sim-host
 * (DIR/dom<ID>.sock), so xenstored applies that guest's permissions and quotas, and keeps a
 * fixed number of writes in flight per connection (below the guest's outstanding-request quota,
 * so xenstored never stops reading it). Run it with `xenballoonctl sim-flood`.
 */
import { createConnection, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { encodePathValue, encodeFrame, FrameDecoder, XsType } from '../wire/index.js';

export interface FloodOptions {
  /** The guest's xenstore socket (a sim-host's dom<ID>.sock). */
  socket: string;
  /** Distinct nodes rewritten round-robin. */
  keys: number;
  /** Where the nodes live, relative to the guest's home (e.g. data/xenballoon). */
  under: string;
  durationMs: number;
  /** Connections opened to the socket, each writing its share of the keys. */
  connections: number;
  /** Writes in flight per connection (a guest may have 20 replies waiting). */
  inFlight: number;
}

export interface FloodResult {
  writes: number;
  /** Writes xenstored refused (quota, permissions): they still cost it a request each. */
  refused: number;
  firstRefusal: string | null;
  seconds: number;
  writesPerS: number;
}

export const DEFAULT_FLOOD: Omit<FloodOptions, 'socket'> = {
  keys: 960, under: 'data/xenballoon', durationMs: 20_000, connections: 1, inFlight: 16,
};

/** One connection's writer: `inFlight` writes outstanding until the deadline, then drains. */
class Lane {
  private readonly decoder = new FrameDecoder();
  private outstanding = 0;
  private reqId = 0;
  private seq = 0;
  writes = 0;
  refused = 0;
  firstRefusal: string | null = null;
  private finished!: () => void;
  readonly done = new Promise<void>((r) => (this.finished = r));

  constructor(
    private readonly sock: Socket,
    private readonly paths: readonly string[],
    private readonly inFlight: number,
    private readonly deadline: number,
  ) {
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', () => this.finished());
    sock.on('close', () => this.finished());
  }

  start(): void {
    this.refill();
  }

  private onData(d: Buffer): void {
    for (const f of this.decoder.push(d)) {
      if (f.type === XsType.WATCH_EVENT) continue;
      this.outstanding--;
      if (f.type === XsType.ERROR) {
        this.refused++;
        this.firstRefusal ??= f.payload.toString('latin1').replace(/\0+$/, '');
      } else {
        this.writes++;
      }
    }
    this.refill();
  }

  /** Tops the lane up to `inFlight` writes, in one socket write. */
  private refill(): void {
    if (performance.now() >= this.deadline) {
      if (this.outstanding === 0) this.finished();
      return;
    }
    const frames: Buffer[] = [];
    while (this.outstanding < this.inFlight) {
      const path = this.paths[this.seq % this.paths.length] as string;
      this.seq++;
      this.outstanding++;
      frames.push(encodeFrame({ type: XsType.WRITE, reqId: ++this.reqId, txId: 0, payload: encodePathValue(path, `flood ${this.seq}`) }));
    }
    if (frames.length) this.sock.write(frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames));
  }
}

/**
 * The k-th node: spread over directories of at most 100 entries, because a directory's record
 * (its children's names) is bounded by xenstored's node size quota (2048 bytes).
 */
export function floodKey(o: Pick<FloodOptions, 'keys' | 'under'>, k: number): string {
  const dirs = Math.ceil(o.keys / 100);
  return `${o.under}/d${k % dirs}/k${k}`;
}

function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Floods until `durationMs` is over; resolves with what was achieved. */
export async function flood(o: FloodOptions): Promise<FloodResult> {
  if (!(o.keys >= 1 && o.connections >= 1 && o.inFlight >= 1)) throw new RangeError('flood: keys, connections and inFlight must be >= 1');
  const socks = await Promise.all(Array.from({ length: o.connections }, () => connect(o.socket)));
  const t0 = performance.now();
  const deadline = t0 + o.durationMs;
  const lanes = socks.map((s, c) => {
    // Relative paths: xenstored resolves them against the guest's own home.
    const paths: string[] = [];
    for (let k = c; k < o.keys; k += o.connections) paths.push(floodKey(o, k));
    return new Lane(s, paths.length ? paths : [`${o.under}/k0`], o.inFlight, deadline);
  });
  for (const l of lanes) l.start();
  await Promise.all(lanes.map((l) => l.done));
  const seconds = (performance.now() - t0) / 1000;
  for (const s of socks) s.destroy();
  const writes = lanes.reduce((n, l) => n + l.writes, 0);
  return {
    writes,
    refused: lanes.reduce((n, l) => n + l.refused, 0),
    firstRefusal: lanes.find((l) => l.firstRefusal !== null)?.firstRefusal ?? null,
    seconds,
    writesPerS: Math.round(writes / seconds),
  };
}
