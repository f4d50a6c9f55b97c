/**
 * Benchmark of our xenstore server (not a test: it prints numbers, it asserts nothing). Measures
 * in-process sessions, then, against `xenballoonctl xenstored` running as its own process, one
 * unix-socket connection with one request in flight (how libxenstore talks) and with many in
 * flight, and watch-event latency from a write on one connection to the event on another.
 * Numbers depend on the machine and its load.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { XenstoredServer } from '../src/sim/xenstored/index.js';
import { encodeFrame, encodeStrings, FrameDecoder, XsType, type Frame } from '../src/wire/index.js';

const DURATION_MS = Number(process.env.BENCH_MS ?? 2000);

class Client {
  private readonly decoder = new FrameDecoder();
  private readonly waiting = new Map<number, (f: Frame) => void>();
  onEvent: ((f: Frame) => void) | undefined;
  private next = 1;
  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      for (const f of this.decoder.push(d)) {
        if (f.type === XsType.WATCH_EVENT) this.onEvent?.(f);
        else {
          const w = this.waiting.get(f.reqId);
          this.waiting.delete(f.reqId);
          w?.(f);
        }
      }
    });
  }
  static async connect(path: string): Promise<Client> {
    const s = createConnection(path);
    await new Promise((r) => s.once('connect', r));
    return new Client(s);
  }
  request(type: number, payload: Buffer): Promise<Frame> {
    const reqId = this.next++;
    const p = new Promise<Frame>((resolve) => this.waiting.set(reqId, resolve));
    this.socket.write(encodeFrame({ type, reqId, txId: 0, payload }));
    return p;
  }
}

async function rate(label: string, op: (i: number) => Promise<unknown>, inFlight: number): Promise<void> {
  let done = 0;
  const end = performance.now() + DURATION_MS;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async (_, lane) => {
      for (let i = lane; performance.now() < end; i += inFlight) {
        await op(i);
        done++;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  console.log(`${label.padEnd(52)} ${Math.round(done / secs).toLocaleString('en-US').padStart(10)} /s`);
}

function syncRate(label: string, op: (i: number) => void): void {
  let done = 0;
  const t0 = performance.now();
  const end = t0 + DURATION_MS;
  while (performance.now() < end) {
    for (let k = 0; k < 256; k++) op(done++);
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(`${label.padEnd(52)} ${Math.round(done / secs).toLocaleString('en-US').padStart(10)} /s`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const CTL = fileURLToPath(new URL('../../../dist/cli/xenballoonctl.js', import.meta.url));

/** Starts `xenballoonctl xenstored` (from dist/) and resolves once it logs that it is ready. */
async function startServerProcess(sock: string): Promise<() => Promise<void>> {
  const child = spawn(process.execPath, [CTL, 'xenstored', '--socket', sock, '--log-level', 'info'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('xenstored ready')) resolve();
    });
    child.once('exit', () => reject(new Error(`xenstored exited: ${log}`)));
  });
  return async () => {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  };
}

async function main(): Promise<void> {
  console.log(`xenstored benchmark (${DURATION_MS} ms per line; indicative only, shared machine)`);
  const server = new XenstoredServer();
  const s = server.session(0);
  for (let i = 0; i < 1000; i++) s.write(`/bench/k${i}`, `value-${i}`);
  syncRate('in-process session: READ', (i) => s.read(`/bench/k${i % 1000}`));
  syncRate('in-process session: WRITE (existing node)', (i) => s.write(`/bench/k${i % 1000}`, 'v'));
  await server.close();

  const dir = await mkdtemp(join(tmpdir(), 'xsbench-'));
  const sock = join(dir, 'xenstored.sock');
  const stop = await startServerProcess(sock);
  try {
    const c = await Client.connect(sock);
    for (let i = 0; i < 1000; i++) await c.request(XsType.WRITE, Buffer.from(`/bench/k${i}\0value-${i}`, 'latin1'));
    const readPayload = (i: number) => encodeStrings([`/bench/k${i % 1000}`]);
    const writePayload = (i: number) => Buffer.from(`/bench/k${i % 1000}\0v${i}`, 'latin1');
    await rate('server process, 1 in flight: READ', (i) => c.request(XsType.READ, readPayload(i)), 1);
    await rate('server process, 1 in flight: WRITE', (i) => c.request(XsType.WRITE, writePayload(i)), 1);
    await rate('server process, 64 in flight: READ', (i) => c.request(XsType.READ, readPayload(i)), 64);
    await rate('server process, 64 in flight: WRITE', (i) => c.request(XsType.WRITE, writePayload(i)), 64);

    // Watch latency: write on one connection, time until the event arrives on another.
    const watcher = await Client.connect(sock);
    const writer = await Client.connect(sock);
    let resolveEvent: (() => void) | undefined;
    watcher.onEvent = () => resolveEvent?.();
    await watcher.request(XsType.WATCH, encodeStrings(['/bench/watched', 'tok']));
    const latencies: number[] = [];
    const end = performance.now() + DURATION_MS;
    for (let i = 0; performance.now() < end; i++) {
      const got = new Promise<void>((r) => (resolveEvent = r));
      const t = performance.now();
      void writer.request(XsType.WRITE, Buffer.from(`/bench/watched\0${i}`, 'latin1'));
      await got;
      latencies.push(performance.now() - t);
    }
    latencies.sort((a, b) => a - b);
    console.log(
      `${'server process, watch event latency (write -> event)'.padEnd(52)} p50 ${percentile(latencies, 50).toFixed(3)} ms, p99 ${percentile(latencies, 99).toFixed(3)} ms (${latencies.length} events)`,
    );
    for (const cl of [c, watcher, writer]) cl.socket.destroy();
  } finally {
    await stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
