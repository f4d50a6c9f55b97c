/**
 * Flood fairness (issue 11): a guest can write its own xenstore nodes as fast as xenstored takes
 * them, and every write below a path the daemon watches costs the daemon a watch event. Each
 * domain gets a FloodGuard that counts its events in fixed windows; a domain over the limit is
 * throttled: the observer removes its watches (xenstored stops sending its events at all) and
 * reads its report once per step instead, for a cool-down that doubles with each repeat. Then it
 * is watched again on probation; a probation that passes quietly ends the episode. Constant
 * memory per domain, O(1) per event, time injected.
 */

/** Events are counted in windows of this length. */
export const FLOOD_WINDOW_MS = 1000;
/**
 * More events than this in one window is a flood. An honest guest publishes at most every
 * 100 ms (xenballoon-report's minimum interval), a legacy one three keys at a time: ~30/s.
 */
export const FLOOD_EVENTS_PER_WINDOW = 100;
/** The first cool-down; each further strike in the same episode doubles it, up to the max. */
export const FLOOD_COOLDOWN_MS = 10_000;
export const FLOOD_COOLDOWN_MAX_MS = 160_000;
/** Watched again after a cool-down, the domain must stay under the limit this long. */
export const FLOOD_PROBATION_MS = 10_000;

export type FloodState = 'ok' | 'throttled' | 'probation';

/** What the observer does with one watch event of the domain. */
export type FloodVerdict = 'take' | 'ignore' | 'throttle';

/** What the observer does at a refresh. */
export type FloodTick = 'none' | 'rewatch' | 'cleared';

export class FloodGuard {
  state: FloodState = 'ok';
  /** Throttles in the current episode (0 when none). */
  strikes = 0;
  /** Episodes this domain has had since the daemon started. */
  episodes = 0;
  /** When the current state ends (cool-down or probation), ms. */
  untilMs = 0;
  /** When the current episode began, ms; the most events seen in one window during it. */
  episodeStartMs = 0;
  peakPerWindow = 0;
  /** Events received while throttled (late ones, before xenstored dropped the watch). */
  ignored = 0;
  private windowStartMs = -Infinity;
  private inWindow = 0;

  get flagged(): boolean {
    return this.state !== 'ok';
  }

  /** Counts one event at `now`; 'throttle' when this one tips the domain over the limit. */
  onEvent(now: number): FloodVerdict {
    // A clock stepped back (wall time is injected) starts a new window too.
    if (now - this.windowStartMs >= FLOOD_WINDOW_MS || now < this.windowStartMs) {
      this.windowStartMs = now;
      this.inWindow = 0;
    }
    this.inWindow++;
    if (this.state === 'throttled') {
      this.ignored++;
      return 'ignore';
    }
    if (this.inWindow <= FLOOD_EVENTS_PER_WINDOW) return 'take';
    if (this.strikes === 0) {
      this.episodes++;
      this.episodeStartMs = now;
      this.peakPerWindow = 0;
    }
    this.strikes++;
    this.peakPerWindow = Math.max(this.peakPerWindow, this.inWindow);
    this.state = 'throttled';
    this.untilMs = now + this.cooldownMs();
    return 'throttle';
  }

  /** The current strike's cool-down. */
  cooldownMs(): number {
    return Math.min(FLOOD_COOLDOWN_MAX_MS, FLOOD_COOLDOWN_MS * 2 ** Math.max(0, this.strikes - 1));
  }

  /** Called at each refresh: ends a cool-down ('rewatch') or a quiet probation ('cleared'). */
  tick(now: number): FloodTick {
    // A clock stepped back must not stretch a cool-down or a probation.
    this.untilMs = Math.min(this.untilMs, now + Math.max(FLOOD_COOLDOWN_MAX_MS, FLOOD_PROBATION_MS));
    if (this.state === 'throttled') {
      this.peakPerWindow = Math.max(this.peakPerWindow, this.inWindow);
      if (now < this.untilMs) return 'none';
      this.state = 'probation';
      this.untilMs = now + FLOOD_PROBATION_MS;
      return 'rewatch';
    }
    if (this.state === 'probation' && now >= this.untilMs) {
      this.state = 'ok';
      this.strikes = 0;
      return 'cleared';
    }
    return 'none';
  }

  /** One line for `explain`, or null when the domain is not flooding. */
  describe(now: number): string | null {
    const inS = (ms: number) => `${Math.max(0, Math.ceil((ms - now) / 1000))} s`;
    const since = `${Math.round((now - this.episodeStartMs) / 1000)} s ago`;
    if (this.state === 'throttled') {
      return `flooding: over ${FLOOD_EVENTS_PER_WINDOW} xenstore watch events in ${FLOOD_WINDOW_MS / 1000} s ` +
        `(up to ${this.peakPerWindow}; episode began ${since}, strike ${this.strikes}): its keys are not watched for ` +
        `another ${inS(this.untilMs)}; its report is read once per step meanwhile (no urgent steps for it)`;
    }
    if (this.state === 'probation') {
      return `flooding: flooded xenstore (episode began ${since}, ${this.strikes} strike(s)); watched again, on probation ` +
        `for another ${inS(this.untilMs)}; another flood turns its watches off for ${Math.round(Math.min(FLOOD_COOLDOWN_MAX_MS, this.cooldownMs() * 2) / 1000)} s`;
    }
    return null;
  }
}
