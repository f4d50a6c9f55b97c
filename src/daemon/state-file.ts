/**
 * The daemon's promises that must outlive it: held reservations and pins, in
 * `--state DIR/state.json` (default /var/lib/xenballoond). Written atomically (a temporary file,
 * fsync, rename, fsync of the directory): a kill -9 or a power cut leaves the old file or the new
 * one, never half of one. Saves are serialised and coalesced: at most one write in flight, and
 * the newest state wins. A file that cannot be read or parsed is set aside, not trusted.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Pin } from './pins.js';
import type { PersistedReservation } from './reservations.js';

export const DEFAULT_STATE_DIR = '/var/lib/xenballoond';
export const STATE_FILE = 'state.json';
/** A state file larger than this is not ours (it holds a few reservations and pins). */
const MAX_STATE_BYTES = 4 * 1024 * 1024;

const kib = z.number().int().nonnegative();
const ms = z.number().int().nonnegative();
const StateSchema = z.object({
  version: z.literal(1),
  /** The highest reservation number handed out: IDs are never reused across restarts. */
  seq: z.number().int().nonnegative(),
  reservations: z.array(z.object({
    id: z.string().min(1).max(64), kib: kib.positive(), label: z.string().max(200).nullable(),
    domain: z.string().max(256).nullable(), createdAtMs: ms, expiresAtMs: ms,
    knownDomids: z.array(z.number().int().nonnegative()).max(65536), domid: z.number().int().nonnegative().nullable(), consumedKib: kib,
  })).max(10_000),
  pins: z.array(z.object({
    domid: z.number().int().nonnegative(), name: z.string().max(256).nullable(), targetKib: kib.positive(), sinceMs: ms,
    source: z.enum(['foreign-write', 'xenballoonctl']),
  })).max(65536),
});

export interface DaemonState {
  seq: number;
  reservations: PersistedReservation[];
  pins: Pin[];
}

export class StateFileError extends Error {}

export class StateFile {
  readonly file: string;
  private writing: Promise<void> | null = null;
  private next: DaemonState | null = null;

  constructor(readonly dir: string) {
    this.file = path.join(dir, STATE_FILE);
  }

  /** Creates the directory (0700) and checks it is writable: a start-up error otherwise. */
  prepare(): void {
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      fs.accessSync(this.dir, fs.constants.W_OK);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new StateFileError(`cannot use the state directory ${this.dir} (${e.code ?? e.message}); create it or choose another with --state DIR`);
    }
  }

  /** The saved state, or null (none yet); a corrupt file is renamed aside and reported by `onBad`. */
  load(onBad: (why: string) => void): DaemonState | null {
    let text: string;
    try {
      const st = fs.statSync(this.file);
      if (st.size > MAX_STATE_BYTES) throw new Error(`larger than ${MAX_STATE_BYTES} bytes`);
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      return this.setAside(`cannot read it: ${(err as Error).message}`, onBad);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return this.setAside('it is not valid JSON', onBad);
    }
    const parsed = StateSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return this.setAside(`unexpected content at ${issue?.path.join('.') || 'top level'}: ${issue?.message ?? 'invalid'}`, onBad);
    }
    const { seq, reservations, pins } = parsed.data;
    return { seq, reservations, pins };
  }

  private setAside(why: string, onBad: (why: string) => void): null {
    const aside = `${this.file}.bad`;
    try {
      fs.renameSync(this.file, aside);
    } catch {
      // Left in place; it is overwritten at the next save.
    }
    onBad(`${this.file}: ${why}; starting without saved reservations and pins (the file is kept as ${aside})`);
    return null;
  }

  /** Saves `state` (coalesced: a save requested while one runs writes the newest state after it). */
  save(state: DaemonState): Promise<void> {
    this.next = state;
    this.writing ??= this.drain().finally(() => (this.writing = null));
    return this.writing;
  }

  /** Resolves once everything asked so far is on disk. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    while (this.next) {
      const s = this.next;
      this.next = null;
      await this.writeAtomically(JSON.stringify({ version: 1, ...s }) + '\n');
    }
  }

  private async writeAtomically(text: string): Promise<void> {
    const tmp = `${this.file}.tmp-${process.pid}`;
    const fh = await fsp.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, this.file);
    // The rename itself is durable only once the directory is synced.
    const dh = await fsp.open(this.dir, 'r').catch(() => null);
    if (dh) {
      await dh.sync().catch(() => undefined);
      await dh.close();
    }
  }
}
