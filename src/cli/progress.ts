/**
 * A one-line progress display for long CLI runs (`simulate`): rewritten in place with `\r` at
 * most every `everyMs` of wall time, erased when done. Only for a terminal — the caller decides;
 * a pipe or a log file gets nothing. Time and output are injected (tests).
 */
export interface ProgressOptions {
  write: (s: string) => void;
  now: () => number;
  everyMs?: number;
}

export class Progress {
  private lastDrawMs = -Infinity;
  private drawn = false;

  constructor(private readonly o: ProgressOptions) {}

  /** `label`: what runs (e.g. "paper-idle-2g, squeezed"); `done`/`total` in the same unit. */
  update(label: string, done: number, total: number, unit = 'simulated minutes', scale = 60_000): void {
    const now = this.o.now();
    if (now - this.lastDrawMs < (this.o.everyMs ?? 250)) return;
    this.lastDrawMs = now;
    const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
    const fmt = (x: number) => String(Math.round((x / scale) * 10) / 10);
    this.o.write(`\r\x1b[K${label}: ${fmt(done)}/${fmt(total)} ${unit} (${pct}%)`);
    this.drawn = true;
  }

  /** Erases the line (before the results are printed). */
  done(): void {
    if (this.drawn) this.o.write('\r\x1b[K');
    this.drawn = false;
    this.lastDrawMs = -Infinity;
  }
}
