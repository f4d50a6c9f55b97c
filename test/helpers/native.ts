/**
 * Running the guest tools (build/bin, built by `make build`) from tests: one-shot runs, and
 * long-running children whose output lines a test can wait for (by condition, with a generous
 * timeout, never by sleeping).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const reportBin = join(repoRoot, 'build/bin/xenballoon-report');
export const eatmemBin = join(repoRoot, 'build/bin/eatmem');
export const procFixtures = join(repoRoot, 'test/fixtures/proc');

/** Environment with no xenstored reachable (an unused socket path), unless overridden. */
export function noXenstoreEnv(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, XENSTORED_PATH: join(dir, 'no-such-xenstored.sock') };
}

export function runOnce(bin: string, args: string[], env?: NodeJS.ProcessEnv) {
  return spawnSync(bin, args, { encoding: 'utf8', env: env ?? process.env, timeout: 60_000 });
}

/** A temporary directory removed by the returned cleanup. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `xbtest-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A copy of a /proc fixture a test may change. */
export function copyFixture(name: string, into: string): string {
  const dest = join(into, name);
  cpSync(join(procFixtures, name), dest, { recursive: true });
  return dest;
}

const WAIT_MS = 30_000;

/** A child process whose stdout and stderr lines are collected as they arrive. */
export class Child {
  readonly proc: ChildProcess;
  readonly out: string[] = [];
  readonly err: string[] = [];
  private outBuf = '';
  private errBuf = '';
  private waiters: (() => void)[] = [];
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  private exited: Promise<void>;

  constructor(bin: string, args: string[], env?: NodeJS.ProcessEnv) {
    this.proc = spawn(bin, args, { env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.outBuf += d;
      this.outBuf = this.take(this.outBuf, this.out);
    });
    this.proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.errBuf += d;
      this.errBuf = this.take(this.errBuf, this.err);
    });
    this.exited = new Promise((resolve) => {
      this.proc.on('close', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        this.notify();
        resolve();
      });
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  private take(buf: string, into: string[]): string {
    const parts = buf.split('\n');
    const rest = parts.pop() ?? '';
    if (parts.length > 0) {
      into.push(...parts);
      this.notify();
    }
    return rest;
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once cond() is true (checked on every new line and on exit). */
  async waitFor<T>(what: string, cond: () => T | undefined | null | false, timeoutMs = WAIT_MS): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = cond();
      if (v !== undefined && v !== null && v !== false) return v;
      if (this.exitCode !== null || this.exitSignal !== null)
        throw new Error(`process exited (${this.exitCode ?? this.exitSignal}) while waiting for ${what}\nstderr:\n${this.err.join('\n')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}\nstdout:\n${this.out.join('\n')}\nstderr:\n${this.err.join('\n')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async waitExit(timeoutMs = WAIT_MS): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for exit\nstderr:\n${this.err.join('\n')}`)), timeoutMs);
    });
    try {
      await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return { code: this.exitCode, signal: this.exitSignal };
  }

  /** Ends the child if it still runs (tests call this in finally/afterEach). */
  async stop(): Promise<void> {
    if (this.exitCode === null && this.exitSignal === null) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }
}
