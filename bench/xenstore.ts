/**
 * `make bench-xenstore`: throughput and watch latency of the libxenstore binding (one handle)
 * against our xenstore server, and the same read done by spawning `xenstore-read`.
 * A benchmark, not a test: it prints numbers and asserts nothing. On a shared machine the
 * numbers are indicative only.
 *
 *   make bench-xenstore   (or: node build/bench/bench/xenstore.js [--socket PATH] [--seconds N] [--json])
 *
 * Without --socket it starts `xenballoonctl xenstored` on a temporary socket and stops it after.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { encodeFrame, encodeStrings, FrameDecoder, XsType } from '../src/wire/index.js';
import { XenStore, type WatchEvent } from '../src/xen/xenstore.js';
import { waitForSocket } from './wait-socket.js';

interface Result {
  name: string;
  value: number;
  unit: string;
}

const ctl = fileURLToPath(new URL('../../../dist/cli/xenballoonctl.js', import.meta.url));

/** Runs `op` for about `seconds` with `concurrency` outstanding calls; returns calls/s. */
async function rate(seconds: number, concurrency: number, op: () => Promise<unknown>): Promise<number> {
  let count = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      await op();
      count++;
    }
  }));
  return count / ((performance.now() - t0) / 1000);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function watchLatency(xs: XenStore, writer: XenStore, samples: number): Promise<number[]> {
  const path = '/bench/watched';
  await writer.write(path, '0');
  const w = await xs.watch(path);
  let waiting: ((ev: WatchEvent) => void) | undefined;
  w.on('event', (ev) => waiting?.(ev));
  // The registration event.
  await new Promise<void>((resolve) => {
    waiting = () => resolve();
    setTimeout(resolve, 200);
  });
  const lat: number[] = [];
  for (let i = 1; i <= samples; i++) {
    const got = new Promise<number>((resolve) => {
      waiting = () => resolve(performance.now());
    });
    const t0 = performance.now();
    await writer.write(path, String(i));
    lat.push((await got) - t0);
  }
  waiting = undefined;
  await w.unwatch();
  return lat.sort((a, b) => a - b);
}

/**
 * The same read over a plain Node socket with our wire codec, one request at a time: what the
 * machine allows right now without libxenstore or worker threads (context for the numbers).
 */
async function rawReads(socket: string, seconds: number): Promise<number> {
  const sock = net.connect(socket);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const decoder = new FrameDecoder();
  const payload = encodeStrings(['/bench/key']);
  let count = 0;
  let reqId = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const send = () => sock.write(encodeFrame({ type: XsType.READ, reqId: ++reqId, txId: 0, payload }));
    sock.on('data', (chunk) => {
      for (const _frame of decoder.push(chunk)) {
        count++;
        if (performance.now() < end) send();
        else resolve();
      }
    });
    send();
  });
  sock.destroy();
  return count / ((performance.now() - t0) / 1000);
}

function spawnReads(socket: string, seconds: number): number {
  const probe = spawnSync('xenstore-read', ['/bench/key'], { env: { ...process.env, XENSTORED_PATH: socket } });
  if (probe.error || probe.status !== 0) return NaN;
  let n = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    spawnSync('xenstore-read', ['/bench/key'], { env: { ...process.env, XENSTORED_PATH: socket } });
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      socket: { type: 'string' },
      seconds: { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
    },
  });
  const seconds = Number(values.seconds);
  let socket = values.socket;
  let server: ChildProcess | undefined;
  let dir: string | undefined;
  if (!socket) {
    dir = mkdtempSync(join(tmpdir(), 'xs-bench-'));
    socket = join(dir, 'xenstored.sock');
    server = spawn(process.execPath, [ctl, 'xenstored', '--socket', socket], { stdio: 'ignore' });
    await waitForSocket(socket, server, 10_000);
  }
  const results: Result[] = [];
  const xs = await XenStore.open({ path: socket, maxInFlight: 2 });
  const writer = await XenStore.open({ path: socket });
  try {
    await xs.write('/bench/key', 'x'.repeat(64));
    await rate(0.5, 1, () => xs.read('/bench/key')); // warm up
    results.push({ name: 'read, 1 outstanding', value: await rate(seconds, 1, () => xs.read('/bench/key')), unit: 'reads/s' });
    results.push({ name: 'read, 8 outstanding (pipelined)', value: await rate(seconds, 8, () => xs.read('/bench/key')), unit: 'reads/s' });
    let i = 0;
    results.push({ name: 'write, 1 outstanding', value: await rate(seconds, 1, () => xs.write('/bench/w', String(i++))), unit: 'writes/s' });
    results.push({ name: 'write, 8 outstanding', value: await rate(seconds, 8, () => xs.write('/bench/w', String(i++))), unit: 'writes/s' });
    const lat = await watchLatency(xs, writer, Math.max(200, Math.round(seconds * 300)));
    results.push({ name: 'watch event latency p50 (write issued -> event)', value: percentile(lat, 50), unit: 'ms' });
    results.push({ name: 'watch event latency p99', value: percentile(lat, 99), unit: 'ms' });
    results.push({ name: 'reference: raw protocol, plain socket, 1 outstanding', value: await rawReads(socket, seconds), unit: 'reads/s' });
    const spawned = spawnReads(socket, Math.min(seconds, 3));
    results.push({ name: 'spawned xenstore-read', value: spawned, unit: 'reads/s' });
    const best = Math.max(results[0]?.value ?? NaN, results[1]?.value ?? NaN);
    results.push({ name: 'binding / spawned xenstore-read', value: best / spawned, unit: 'x' });
  } finally {
    await writer.close();
    await xs.close();
    server?.kill('SIGTERM');
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(results) + '\n');
  } else {
    for (const r of results) {
      const v = r.unit === 'ms' ? r.value.toFixed(3) : r.unit === 'x' ? r.value.toFixed(0) : r.value.toFixed(0);
      process.stdout.write(`${r.name.padEnd(52)} ${v.padStart(10)} ${r.unit}\n`);
    }
  }
}

await main();
