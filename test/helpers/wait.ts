/**
 * Waiting for a condition in tests that drive real processes: poll, never sleep a fixed time.
 */

/** Generous: the machine is shared and slow; these guard against hangs, not for speed. */
export const WAIT_MS = 45_000;

/**
 * Polls `probe` until it returns a value (not undefined, not false) and returns that value. A
 * probe that throws is retried; the last error is named if the wait times out.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = WAIT_MS): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
