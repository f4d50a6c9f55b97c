/**
 * Test helpers for our xenstore server, for every test that needs a xenstored:
 * - startXenstored(): the built `xenballoonctl xenstored` as a child process in a fresh temp
 *   dir, ready (booted, every socket answers) when the promise resolves;
 * - startInProcessXenstored(): the same set-up inside the test process (faster, and gives the
 *   test the XenstoredServer object);
 * - runXenstoreTool(): a real xenstore-* CLI tool against a socket, asynchronously (never
 *   spawnSync while an in-process server must answer).
 * Both servers are stopped, their children killed and temp dirs removed by stop().
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { XenstoredLimits } from '../../src/sim/xenstored/limits.js';
import { bootServer, XenstoredServer } from '../../src/sim/xenstored/index.js';

export const ctlPath = fileURLToPath(new URL('../../dist/cli/xenballoonctl.js', import.meta.url));

export interface XenstoredHandle {
  /** Temp dir holding the sockets; removed by stop(). */
  dir: string;
  /** dom0's socket (use as XENSTORED_PATH). */
  socket: string;
  /** Each guest's socket, by domid. */
  domainSockets: Map<number, string>;
  stop(): Promise<void>;
}

export interface XenstoredProcess extends XenstoredHandle {
  child: ChildProcess;
  /** Everything the server wrote to stderr so far (its pino log). */
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
}

export interface StartOptions {
  /** Guests to give a domain socket (`dom<ID>.sock`). */
  domains?: number[];
  /** Extra CLI arguments (process variant). */
  args?: string[];
  /** Quota overrides (in-process variant). */
  limits?: Partial<XenstoredLimits>;
}

const READY_TIMEOUT_MS = 30_000;

/** Starts `xenballoonctl xenstored` from dist/ and waits until its dom0 socket answers. */
export async function startXenstored(options: StartOptions = {}): Promise<XenstoredProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'xsd-'));
  const socket = join(dir, 'xenstored.sock');
  const domainSockets = new Map((options.domains ?? []).map((d) => [d, join(dir, `dom${d}.sock`)]));
  const args = [ctlPath, 'xenstored', '--socket', socket, '--log-level', 'debug'];
  for (const [d, p] of domainSockets) args.push('--domain-socket', `${d}=${p}`);
  args.push(...(options.args ?? []));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  let running = true;
  void exited.then(() => (running = false));
  const stop = async () => {
    if (running) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(killer);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // Ready = fully booted (every domain provisioned and introduced), which the server logs
    // after its sockets already answer.
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!stderr.includes('"msg":"xenstored ready"')) {
      if (!running) throw new Error(`xenstored exited early: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`xenstored did not get ready within ${READY_TIMEOUT_MS} ms: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitForXenstored(socket, READY_TIMEOUT_MS);
    for (const p of domainSockets.values()) await waitForXenstored(p, READY_TIMEOUT_MS);
  } catch (err) {
    await stop();
    throw err;
  }
  return { dir, socket, domainSockets, child, stderr: () => stderr, exited, stop };
}

/** The same server as startXenstored(), in this process. */
export async function startInProcessXenstored(options: StartOptions = {}): Promise<XenstoredHandle & { server: XenstoredServer }> {
  const dir = await mkdtemp(join(tmpdir(), 'xsi-'));
  const socket = join(dir, 'xenstored.sock');
  const domainSockets = new Map((options.domains ?? []).map((d) => [d, join(dir, `dom${d}.sock`)]));
  const server = new XenstoredServer({ limits: options.limits });
  try {
    await bootServer(server, socket, [...domainSockets].map(([domid, path]) => ({ domid, path })));
  } catch (err) {
    await server.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    socket,
    domainSockets,
    server,
    stop: async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Resolves once a xenstore server answers a request on `socket` (GET_DOMAIN_PATH), retrying
 * until `timeoutMs`. `abort` may return a reason to give up early (e.g. the server died).
 */
export async function waitForXenstored(socket: string, timeoutMs: number, abort?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    const why = abort?.();
    if (why) throw new Error(why);
    try {
      await probe(socket);
      return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`xenstored on ${socket} did not answer within ${timeoutMs} ms (${last})`);
}

function probe(socket: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createConnection(socket);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('no reply'));
    }, 2000);
    const frame = Buffer.alloc(18);
    frame.writeUInt32LE(10, 0); // GET_DOMAIN_PATH
    frame.writeUInt32LE(1, 4);
    frame.writeUInt32LE(2, 12);
    frame.write('0\0', 16, 'latin1');
    let got = 0;
    s.on('connect', () => s.write(frame));
    s.on('data', (d) => {
      got += d.length;
      if (got >= 16) {
        clearTimeout(timer);
        s.destroy();
        resolve();
      }
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a real xenstore CLI tool (`xenstore-read` …) against `socket` and resolves with its exit
 * code and output (stdout as latin1, so binary values survive).
 */
export function runXenstoreTool(socket: string, tool: string, args: string[], timeoutMs = 30_000): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(
      tool,
      args,
      { env: { ...process.env, XENSTORED_PATH: socket }, encoding: 'latin1', timeout: timeoutMs },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(err);
          return;
        }
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
  });
}
