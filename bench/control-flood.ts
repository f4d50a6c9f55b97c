/**
 * A control client that pipelines `status` requests and never reads the answers, against the
 * real daemon on a simulated host (issue 14: it took RSS from 80 MB to 1.2 GB and stalled the
 * loop). A benchmark, not a test: it prints numbers and asserts nothing.
 *
 *   npx tsc -p tsconfig.bench.json && node build/bench/bench/control-flood.js [--seconds 12] [--dist DIR] [--json]
 *
 * Protocol: sim-host (test/fixtures/scenarios/daemon-it.yaml, nothing launched) and the daemon
 * from DIST (default this tree's dist/; give another tree's dist/ to compare) with the
 * integration tests' policy (500 ms interval); 3 s to settle; then one connection writes
 * `{"op":"status"}` lines as fast as the socket takes them for --seconds, never reading. Every
 * second: the daemon's RSS (VmRSS) and, over a second connection, its step count (a status that
 * does not answer within 3 s is counted as a timeout). Prints RSS before and at its peak, the
 * requests the flooder got into the socket, the steps completed meanwhile and the timeouts.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '12' }, dist: { type: 'string' }, json: { type: 'boolean', default: false } } });
const dist = values.dist ?? join(root, 'dist');
const seconds = Number(values.seconds);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface StatusReply { status: { daemon: { steps: number; stalled: boolean } } }

function status(control: string, timeoutMs: number): Promise<StatusReply['status'] | null> {
  return new Promise((resolve) => {
    const s = net.connect(control);
    let buf = '';
    const timer = setTimeout(() => { s.destroy(); resolve(null); }, timeoutMs);
    s.on('data', (x) => {
      buf += x.toString();
      if (!buf.includes('\n')) return;
      clearTimeout(timer);
      s.destroy();
      resolve((JSON.parse(buf.slice(0, buf.indexOf('\n'))) as StatusReply).status ?? null);
    });
    s.on('error', () => { clearTimeout(timer); resolve(null); });
    s.write('{"op":"status"}\n');
  });
}

const dir = mkdtempSync(join(tmpdir(), 'xbd-bench-flood-'));
const ctl = join(dist, 'cli/xenballoonctl.js');
copyFileSync(join(root, 'test/fixtures/policies/daemon-it.yaml'), join(dir, 'policy.yaml'));
const host = spawn(process.execPath, [ctl, 'sim-host', '--scenario', join(root, 'test/fixtures/scenarios/daemon-it.yaml'), '--dir', dir,
  '--launch', 'none', '--forever', '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise<void>((r) => host.stdout.on('data', (b: Buffer) => { if (b.toString().includes('ready')) r(); }));
const control = join(dir, 'control.sock');
// A daemon from before --state existed (to compare) is started without it.
const stateArgs = readFileSync(join(dist, 'cli/xenballoond.js'), 'utf8').includes('--state DIR') ? ['--state', join(dir, 'state')] : [];
const daemon = spawn(process.execPath, [join(dist, 'cli/xenballoond.js'), '--xenstore', join(dir, 'xenstored.sock'),
  '--hypervisor', `sim:${join(dir, 'hypervisor.sock')}`, '--control', control, ...stateArgs,
  '--policy', join(dir, 'policy.yaml'), '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
const rssKib = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${daemon.pid}/status`, 'utf8'))?.[1] ?? 0);
try {
  for (let i = 0; i < 150 && !(await status(control, 1000)); i++) await sleep(200);
  await sleep(3000);
  const before = rssKib();
  const st0 = await status(control, 3000);
  const flood = net.connect(control);
  flood.pause(); // never reads
  flood.on('error', () => undefined);
  const chunk = Buffer.from('{"op":"status"}\n'.repeat(1000));
  let sent = 0;
  const pump = () => {
    while (flood.write(chunk)) sent += 1000;
  };
  flood.on('drain', () => { sent += 1000; pump(); });
  flood.on('connect', pump);
  let peak = before;
  let timeouts = 0;
  let steps = st0?.daemon.steps ?? 0;
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    await sleep(1000);
    peak = Math.max(peak, rssKib());
    const st = await status(control, 3000);
    if (st) steps = st.daemon.steps;
    else timeouts++;
  }
  const end = await status(control, 5000);
  flood.destroy();
  const result = {
    dist, seconds, rss_before_mib: Math.round(before / 1024), rss_peak_mib: Math.round(peak / 1024),
    rss_growth_mib: Math.round((peak - before) / 1024), requests_in_socket: sent,
    steps_during: (end?.daemon.steps ?? steps) - (st0?.daemon.steps ?? 0), status_timeouts: timeouts,
    stalled_at_end: end ? end.daemon.stalled : 'no answer',
  };
  if (values.json) process.stdout.write(JSON.stringify(result) + '\n');
  else for (const [k, v] of Object.entries(result)) process.stdout.write(`${k.padEnd(20)} ${String(v)}\n`);
} finally {
  daemon.kill('SIGKILL');
  host.kill('SIGTERM');
  await sleep(500);
  rmSync(dir, { recursive: true, force: true });
}
