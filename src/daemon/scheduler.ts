/**
 * When control steps run. A step runs every interval whatever happens (time-based decisions —
 * rate limits, stuck detection, report staleness — need it), one at a time. Events in between
 * only update the observer's cache, so a guest rewriting its report 1,000 times a second costs
 * nothing extra. An urgent event (a guest under pressure, a reservation) runs a step at once,
 * but each source may do so at most once per interval and urgent steps are spaced by a minimum
 * gap, so no guest can make the daemon spin.
 */
export interface SchedulerOptions {
  intervalMs: number;
  /** The step itself; its failures are the caller's to catch (a rejection is reported to onError). */
  step: (reasons: readonly string[]) => Promise<void>;
  onError: (err: unknown) => void;
  now?: () => number;
}

export class StepScheduler {
  private intervalMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private lastStartMs = -Infinity;
  private pendingReasons = new Set<string>();
  private urgentPending = false;
  private readonly lastUrgentBySource = new Map<string, number>();
  private stopped = true;

  constructor(private readonly opts: SchedulerOptions) {
    this.intervalMs = opts.intervalMs;
    this.now = opts.now ?? Date.now;
  }

  get interval(): number {
    return this.intervalMs;
  }

  /** Urgent steps are never closer together than this. */
  get minGapMs(): number {
    return Math.max(10, Math.floor(this.intervalMs / 10));
  }

  start(): void {
    this.stopped = false;
    this.arm(0);
  }

  setInterval(ms: number): void {
    this.intervalMs = ms;
    if (!this.stopped && !this.running) this.arm(Math.max(0, this.lastStartMs + ms - this.now()));
  }

  /**
   * Asks for a step as soon as allowed. A guest (`trusted` false) gets at most one urgent step
   * per interval; returns false when it already had it (the event will be seen at the next
   * regular step anyway). Trusted sources (the toolstack's @introduceDomain, reservations from
   * the root-only socket) are only spaced by the minimum gap.
   */
  urgent(source: string, reason: string, trusted = false): boolean {
    if (this.stopped) return false;
    const now = this.now();
    if (!trusted) {
      const last = this.lastUrgentBySource.get(source);
      if (last !== undefined && now - last < this.intervalMs) return false;
      this.lastUrgentBySource.set(source, now);
    }
    this.pendingReasons.add(reason);
    this.urgentPending = true;
    if (!this.running) this.arm(Math.max(0, this.lastStartMs + this.minGapMs - now));
    return true;
  }

  /** Forgets a source's urgency budget (a domain that went away). */
  forget(source: string): void {
    this.lastUrgentBySource.delete(source);
  }

  private arm(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fire(), delayMs);
  }

  private fire(): void {
    this.timer = null;
    if (this.stopped || this.running) return;
    const reasons = this.pendingReasons.size ? [...this.pendingReasons] : ['interval'];
    this.pendingReasons = new Set();
    this.urgentPending = false;
    this.lastStartMs = this.now();
    this.running = this.opts
      .step(reasons)
      .catch((err: unknown) => this.opts.onError(err))
      .finally(() => {
        this.running = null;
        if (this.stopped) return;
        const now = this.now();
        const next = this.urgentPending ? this.lastStartMs + this.minGapMs : this.lastStartMs + this.intervalMs;
        this.arm(Math.max(0, next - now));
      });
  }

  /** Stops scheduling; resolves once the step in flight (if any) has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
