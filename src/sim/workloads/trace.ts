/**
 * Replays a recorded trace so users can bring their own workload: a CSV with a header line and
 * the columns `time_s,anon_kib,file_kib` and optionally `committed_kib` (Committed_AS; anon when
 * absent). Values hold until the next row (a step function); at the end the trace loops.
 */
import { type Demand, NO_DEMAND, RestartClock, type Workload } from './types.js';

export interface TracePoint {
  tMs: number;
  anonKib: number;
  fileKib: number;
  committedKib: number;
}

export interface TraceConfig {
  points: TracePoint[];
  hotFraction: number;
  touchRateKibPerMs: number;
  loop: boolean;
  restartAfterMs: number;
}

const MAX_ROWS = 1_000_000;

/** Parses the CSV; throws an Error naming the line for anything malformed. */
export function parseTraceCsv(text: string, source: string): TracePoint[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  const header = (lines.shift() ?? '').split(',').map((h) => h.trim());
  const col = (name: string) => header.indexOf(name);
  const [ti, ai, fi, ci] = [col('time_s'), col('anon_kib'), col('file_kib'), col('committed_kib')];
  if (ti < 0 || ai < 0 || fi < 0) {
    throw new Error(`${source}: the header must name time_s, anon_kib and file_kib (committed_kib optional)`);
  }
  if (lines.length === 0) throw new Error(`${source}: no data rows`);
  if (lines.length > MAX_ROWS) throw new Error(`${source}: more than ${MAX_ROWS} rows`);
  const points: TracePoint[] = [];
  lines.forEach((line, i) => {
    const cells = line.split(',').map((c) => c.trim());
    const num = (idx: number, what: string): number => {
      const v = Number(cells[idx]);
      if (cells[idx] === undefined || cells[idx] === '' || !Number.isFinite(v) || v < 0) {
        throw new Error(`${source}:${i + 2}: ${what} '${cells[idx] ?? ''}' is not a non-negative number`);
      }
      return v;
    };
    const t = num(ti, 'time_s') * 1000;
    const prev = points[points.length - 1];
    if (prev && t <= prev.tMs) throw new Error(`${source}:${i + 2}: time_s must increase`);
    const anon = num(ai, 'anon_kib');
    points.push({ tMs: t, anonKib: anon, fileKib: num(fi, 'file_kib'), committedKib: ci >= 0 ? num(ci, 'committed_kib') : anon });
  });
  return points;
}

export class TraceReplay implements Workload {
  readonly kind = 'trace';
  private t = 0;
  private i = 0;
  private readonly restart: RestartClock;

  constructor(private readonly cfg: TraceConfig) {
    if (cfg.points.length === 0) throw new Error('empty trace');
    this.restart = new RestartClock(cfg.restartAfterMs);
  }

  private current(): TracePoint {
    return this.cfg.points[this.i] as TracePoint;
  }

  demand(): Demand {
    if (this.restart.isDown) return NO_DEMAND;
    const p = this.current();
    if (this.t < p.tMs) return NO_DEMAND;
    return {
      anonKib: p.anonKib,
      committedKib: Math.max(p.committedKib, p.anonKib),
      hotAnonKib: p.anonKib * this.cfg.hotFraction,
      anonTouchKibPerMs: this.cfg.touchRateKibPerMs,
      fileWsKib: p.fileKib,
      fileTouchKibPerMs: p.fileKib > 0 ? this.cfg.touchRateKibPerMs : 0,
      fileStreamKibPerMs: 0,
      fullStallShare: 1,
    };
  }

  advance(wallMs: number): void {
    if (this.restart.down(wallMs)) return;
    this.t += wallMs;
    const pts = this.cfg.points;
    while (this.i + 1 < pts.length && (pts[this.i + 1] as TracePoint).tMs <= this.t) this.i++;
    const last = pts[pts.length - 1] as TracePoint;
    if (this.cfg.loop && this.i === pts.length - 1 && this.t >= last.tMs + Math.max(1000, last.tMs / pts.length)) {
      this.t -= last.tMs + Math.max(1000, last.tMs / pts.length);
      this.i = 0;
    }
  }

  kill(): void {
    this.restart.kill();
  }
}
