/**
 * A domain's effective settings: the policy's defaults, then every rule that matches the domain
 * in order (later rules override earlier ones key by key). Pure; memoised per policy object
 * because the core asks for every domain at every step.
 */
import { mergeSettings } from './merge.js';
import type { DomainSettings, Match, Policy } from './schema.js';

export interface DomainIdentity {
  domid: number;
  name: string;
}

/** Glob with `*` (any run) and `?` (one character); everything else literal; whole name. */
export function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (const ch of glob) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(re + '$', 's');
}

interface Compiled {
  matchers: ((d: DomainIdentity) => boolean)[];
  /** By domid: the name it was resolved for and the result (names rarely change). */
  cache: Map<number, { name: string; settings: DomainSettings }>;
}

const compiled = new WeakMap<Policy, Compiled>();
const CACHE_LIMIT = 100_000;

function compile(policy: Policy): Compiled {
  let c = compiled.get(policy);
  if (!c) {
    c = { matchers: policy.rules.map((r) => matcher(r.match)), cache: new Map() };
    compiled.set(policy, c);
  }
  return c;
}

function matcher(match: Match): (d: DomainIdentity) => boolean {
  const re = match.name !== undefined ? globToRegExp(match.name) : null;
  return (d) => (match.domid === undefined || match.domid === d.domid) && (re === null || re.test(d.name));
}

/** Effective settings for one domain. dom0 is managed only when `host.manage_dom0` is true. */
export function settingsFor(policy: Policy, domain: DomainIdentity): DomainSettings {
  const c = compile(policy);
  const hit = c.cache.get(domain.domid);
  if (hit && hit.name === domain.name) return hit.settings;
  let s = policy.defaults;
  policy.rules.forEach((rule, i) => {
    if (c.matchers[i]?.(domain)) {
      const { match: _match, ...settings } = rule;
      s = mergeSettings(s, settings);
    }
  });
  if (domain.domid === 0 && !policy.host.manage_dom0) s = { ...s, manage: false };
  if (c.cache.size >= CACHE_LIMIT) c.cache.clear();
  c.cache.set(domain.domid, { name: domain.name, settings: s });
  return s;
}

/** Indexes of the rules that match a domain (for `explain`). */
export function matchingRules(policy: Policy, domain: DomainIdentity): number[] {
  const c = compile(policy);
  const out: number[] = [];
  c.matchers.forEach((m, i) => {
    if (m(domain)) out.push(i);
  });
  return out;
}
