/**
 * Where the daemon's log lines go and how they look there. Three formats:
 * - `journal`: stdout is the systemd journal (JOURNAL_STREAM names it): each line starts with its
 *   syslog priority (`<3>`, `<4>`, `<6>`…, which journald turns into PRIORITY= and strips), then
 *   the message a person reads, then the structured fields as `key=value`;
 * - `json`: pino's JSON lines, one object per line (for files, pipes and log shippers);
 * - `pretty`: pino-pretty on a terminal (src/daemon/log.ts).
 *
 * Writing never throws: a full disk (ENOSPC), a closed pipe (EPIPE) or any other failure drops the
 * line and counts it; the first line that gets through afterwards is preceded by one notice saying
 * how many were lost and why. A daemon must not die because its log destination did.
 */
import { fstatSync, writeSync } from 'node:fs';

export type LogFormat = 'json' | 'journal' | 'pretty';

/** pino's numeric levels -> syslog priorities (sd-daemon(3): <2> crit … <7> debug). */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/**
 * Whether fd 1 is the journal stream systemd set up: JOURNAL_STREAM is "DEV:INODE" of that
 * stream (systemd.exec(5)); a match means stdout was not redirected elsewhere by the service.
 */
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env, fd = 1): boolean {
  const js = env.JOURNAL_STREAM;
  if (!js) return false;
  const [dev, ino] = js.split(':');
  try {
    const st = fstatSync(fd, { bigint: true });
    return String(st.dev) === dev && String(st.ino) === ino;
  } catch {
    return false;
  }
}

/** Keys every pino line carries that the journal has its own fields for. */
const JOURNAL_OMIT = new Set(['level', 'time', 'pid', 'hostname', 'msg']);
const MAX_VALUE_CHARS = 200;

function fieldValue(v: unknown): string {
  let s: string;
  if (typeof v === 'string') s = /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  else if (v !== null && typeof v === 'object' && 'message' in v && typeof (v as { message: unknown }).message === 'string') {
    s = JSON.stringify((v as { message: string }).message); // an Error: its message (the stack is in the JSON format)
  } else s = JSON.stringify(v) ?? String(v);
  return s.length > MAX_VALUE_CHARS ? s.slice(0, MAX_VALUE_CHARS - 1) + '…' : s;
}

/** One pino JSON line -> `<P>message key=value…` for the journal. */
export function journalLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return `<6>${json.trimEnd()}\n`;
  }
  const prio = syslogPriority(typeof rec.level === 'number' ? rec.level : 30);
  const msg = typeof rec.msg === 'string' ? rec.msg : '';
  const fields = Object.entries(rec)
    .filter(([k, v]) => !JOURNAL_OMIT.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${fieldValue(v)}`);
  // One line per record: a newline inside the message would start a new journal entry at info.
  const text = [msg, ...fields].filter(Boolean).join(' ').replace(/[\r\n]+/g, ' ⏎ ');
  return `<${prio}>${text}\n`;
}

export interface SafeWriterOptions {
  format: 'json' | 'journal';
  /** File descriptor written with writeSync (default 1), or a sink for tests. */
  fd?: number;
  sink?: { write(s: string): unknown };
}

/**
 * A pino destination that cannot throw (no `emit` method: pino would call it with its config). Partial writes are completed; any error drops the rest
 * of the line.
 */
export class SafeWriter {
  private droppedLines = 0;
  private pendingDrops = 0;
  private dropCause: string | null = null;
  private readonly fd: number;

  constructor(private readonly o: SafeWriterOptions) {
    this.fd = o.fd ?? 1;
  }

  /** Lines lost since start. */
  get dropped(): number {
    return this.droppedLines;
  }

  write(line: string): boolean {
    if (this.pendingDrops > 0) {
      const notice = JSON.stringify({
        level: 40, time: Date.now(), dropped_lines: this.pendingDrops, cause: this.dropCause,
        msg: `${this.pendingDrops} log line(s) were lost: the log destination failed (${this.dropCause ?? 'error'}); logging works again`,
      }) + '\n';
      if (!this.put(notice)) return this.drop();
      this.pendingDrops = 0;
      this.dropCause = null;
    }
    if (!this.put(line)) return this.drop();
    return true;
  }

  private drop(): boolean {
    this.droppedLines++;
    this.pendingDrops++;
    return true;
  }

  /** Formats and writes one pino JSON line; false when it could not be written whole. */
  private put(json: string): boolean {
    const text = this.o.format === 'journal' ? journalLine(json) : json;
    try {
      if (this.o.sink) {
        this.o.sink.write(text);
        return true;
      }
      const buf = Buffer.from(text);
      let off = 0;
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
      return true;
    } catch (err) {
      this.dropCause = (err as NodeJS.ErrnoException).code ?? (err as Error).message ?? 'error';
      return false;
    }
  }
}
