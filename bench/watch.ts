/**
 * `make bench-watch`: CPU a process spends on xenstore watch events, the daemon's pattern at
 * rest: 100 watched subtrees, one key written in one of them 10 times a second (each key every
 * 10 s, like 100 guests' heartbeats), and the watcher reading the key that changed.
 * A benchmark, not a test: it prints numbers and asserts nothing; indicative only on a shared machine.
 *
 *   make bench-watch   (or: node build/bench/bench/watch.js [--seconds 60] [--warmup 10] [--keys 100]
 *                       [--rate 10] [--modes event,read] [--json])
 *
 * It starts `xenballoonctl xenstored` on a temporary socket, a writer process, and one watcher
 * process per mode (so each is measured alone, after its own warm-up, with process.cpuUsage:
 * every thread of the watcher, libxenstore's and libuv's included):
 *   event  the watch events only (the binding's floor);
 *   read   each event then reads the changed key with a separate call (XenStore.readString);
 *   shim-event  the events through the event shim (build/lib/libxbdshim.so), nothing read;
 *   shim-value  the same, with watches opened `{ value: true }`: the value comes with the event.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultShimPath, XenStore } from '../src/xen/xenstore.js';
import { waitForSocket } from './wait-socket.js';

const ctl = fileURLToPath(new URL('../../../dist/cli/xenballoonctl.js', import.meta.url));
const self = fileURLToPath(import.meta.url);
const MODES = ['event', 'read', 'shim-event', 'shim-value'] as const;
type Mode = (typeof MODES)[number];

const keyPath = (i: number) => `/bench/watch/d${i}/data/report`;
const subtree = (i: number) => `/bench/watch/d${i}`;

interface WatcherResult {
  mode: Mode;
  seconds: number;
  events: number;
  cpuPct: number;
  cpuUsPerEvent: number;
}

/** A report-sized value (~600 bytes), different each time. */
function reportValue(seq: number): string {
  return `v1 seq=${seq} ` + 'MemTotal:1048576 MemFree:123456 Cached:234567 '.repeat(12);
}

/** Writer process: one key every 1000/rate ms, round robin over the keys. */
async function runWriter(socket: string, keys: number, rate: number): Promise<void> {
  const xs = await XenStore.open({ path: socket });
  for (let i = 0; i < keys; i++) await xs.write(keyPath(i), reportValue(0));
  let seq = 0;
  const timer = setInterval(() => {
    const i = seq % keys;
    seq++;
    xs.write(keyPath(i), reportValue(seq)).catch(() => undefined);
  }, 1000 / rate);
  process.on('SIGTERM', () => {
    clearInterval(timer);
    void xs.close().then(() => process.exit(0));
  });
  process.send?.('ready');
}

/** Watcher process: watches every subtree, handles events as `mode` says, prints its result. */
async function runWatcher(socket: string, mode: Mode, keys: number, warmupS: number, seconds: number): Promise<void> {
  const shim = mode.startsWith('shim') ? defaultShimPath() : undefined;
  if (mode.startsWith('shim') && !shim) throw new Error('build/lib/libxbdshim.so not found: run make build');
  const xs = await XenStore.open({ path: socket, ...(shim ? { eventShim: shim } : {}) });
  let events = 0;
  let bytes = 0;
  xs.on('watch', (ev) => {
    events++;
    if (mode === 'shim-value') {
      if (ev.value) bytes += ev.value.length;
      else if (ev.path.endsWith('/report')) throw new Error(`no value with the event for ${ev.path}`);
    } else if (mode === 'read') {
      xs.readString(ev.path).then((v) => {
        bytes += v.length;
      }, () => undefined);
    }
  });
  for (let i = 0; i < keys; i++) (await xs.watch(subtree(i), `w${i}`, { value: mode === 'shim-value' })).on('event', () => undefined);
  await new Promise((r) => setTimeout(r, warmupS * 1000));
  const e0 = events;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const c = process.cpuUsage(c0);
  const wall = (performance.now() - t0) / 1000;
  const n = events - e0;
  const cpuUs = c.user + c.system;
  const res: WatcherResult = {
    mode, seconds: wall, events: n, cpuPct: (cpuUs / 1e6 / wall) * 100, cpuUsPerEvent: n > 0 ? cpuUs / n : NaN,
  };
  await xs.close();
  if (bytes < 0) process.exitCode = 1; // keeps `bytes` (and the read) from being optimised away
  process.stdout.write(JSON.stringify(res) + '\n');
}

function runChild(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [self, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`watcher exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      warmup: { type: 'string', default: '10' },
      keys: { type: 'string', default: '100' },
      rate: { type: 'string', default: '10' },
      modes: { type: 'string', default: MODES.join(',') },
      json: { type: 'boolean', default: false },
      role: { type: 'string' },
      socket: { type: 'string' },
    },
  });
  const seconds = Number(values.seconds);
  const warmup = Number(values.warmup);
  const keys = Number(values.keys);
  const rate = Number(values.rate);
  if (values.role === 'writer') return runWriter(values.socket as string, keys, rate);
  if (values.role === 'watcher') {
    return runWatcher(values.socket as string, values.modes as Mode, keys, warmup, seconds);
  }
  const modes = values.modes.split(',').map((m) => {
    if (!(MODES as readonly string[]).includes(m)) throw new Error(`unknown mode '${m}' (modes: ${MODES.join(', ')})`);
    return m as Mode;
  });
  const dir = mkdtempSync(join(tmpdir(), 'xbd-bench-watch-'));
  const socket = join(dir, 'xenstored.sock');
  const server = spawn(process.execPath, [ctl, 'xenstored', '--socket', socket], { stdio: 'ignore' });
  let writer: ChildProcess | undefined;
  try {
    await waitForSocket(socket, server, 10_000);
    writer = spawn(process.execPath, [self, '--role', 'writer', '--socket', socket, '--keys', String(keys), '--rate', String(rate)],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      writer?.once('message', () => resolve());
      writer?.once('exit', (code) => reject(new Error(`writer exited with ${code}`)));
    });
    const results: WatcherResult[] = [];
    for (const mode of modes) {
      const out = await runChild(['--role', 'watcher', '--socket', socket, '--modes', mode, '--keys', String(keys),
        '--warmup', String(warmup), '--seconds', String(seconds)]);
      const r = JSON.parse(out.trim()) as WatcherResult;
      results.push(r);
      if (!values.json) {
        console.log(`${r.mode.padEnd(6)} ${r.events} events in ${r.seconds.toFixed(1)} s: ` +
          `CPU ${r.cpuPct.toFixed(2)} % of a core, ${r.cpuUsPerEvent.toFixed(0)} µs per event`);
      }
    }
    const base = results.find((r) => r.mode === 'read') ?? results[0];
    if (values.json) console.log(JSON.stringify({ keys, rate, results }));
    else if (base) {
      for (const r of results) if (r !== base) console.log(`${r.mode} / ${base.mode}: CPU per event ×${(r.cpuUsPerEvent / base.cpuUsPerEvent).toFixed(2)}`);
    }
  } finally {
    writer?.kill('SIGTERM');
    server.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
