/**
 * Merging settings, pure (no file access): shared by the loader (load.ts) and by the per-domain
 * settings the decision core asks for (effective.ts), so the core never imports the loader.
 */
import type { DomainSettings, Settings } from './schema.js';

/** Settings `over` on top of complete settings `base`; nested sections merge key by key. */
export function mergeSettings(base: DomainSettings, over: Settings): DomainSettings {
  const { need, pressure, rate, stuck, ...flat } = over;
  return {
    ...base,
    ...flat,
    need: { ...base.need, ...need },
    pressure: { ...base.pressure, ...pressure },
    rate: { ...base.rate, ...rate },
    stuck: { ...base.stuck, ...stuck },
  };
}
