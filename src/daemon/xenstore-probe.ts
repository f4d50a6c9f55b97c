/**
 * Notices a xenstored that stopped answering (hung, SIGSTOPped, overloaded). At rest the daemon
 * makes no xenstore call of its own (it waits for watch events), so a silent xenstored would look
 * like quiet guests: each step starts one cheap read unless one is still out, and a read out for
 * longer than the deadline marks xenstore `unresponsive` (status, one log line) until it answers.
 */
export interface XenstoreProbeOptions {
  read: () => Promise<unknown>;
  deadlineMs: () => number;
  now: () => number;
  onChange: (unresponsive: boolean, waitedMs: number) => void;
}

export class XenstoreProbe {
  private sentAtMs: number | null = null;
  private flagged = false;

  constructor(private readonly o: XenstoreProbeOptions) {}

  get unresponsive(): boolean {
    return this.flagged;
  }

  /** Called every step: judges the read in flight, or sends a new one. */
  check(): void {
    const now = this.o.now();
    if (this.sentAtMs !== null) {
      const waited = now - this.sentAtMs;
      if (!this.flagged && waited >= this.o.deadlineMs()) {
        this.flagged = true;
        this.o.onChange(true, waited);
      }
      return;
    }
    this.sentAtMs = now;
    // Any answer, an error included (ENOENT, a lost connection), means xenstored is not hung.
    this.o.read().catch(() => undefined).finally(() => {
      const waited = this.o.now() - (this.sentAtMs ?? now);
      this.sentAtMs = null;
      if (this.flagged) {
        this.flagged = false;
        this.o.onChange(false, waited);
      }
    });
  }
}
