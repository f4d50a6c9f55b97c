/**
 * Policy files: YAML read with `yaml`, validated by zod schemas that are also the types, merged
 * with `policy.d/` drop-ins, resolved per domain. See docs/policy.md for every key.
 */
export {
  BUILTIN_HOST,
  BUILTIN_INTERVAL_MS,
  BUILTIN_SETTINGS,
} from './defaults.js';
export { globToRegExp, matchingRules, settingsFor, type DomainIdentity } from './effective.js';
export {
  buildPolicy,
  builtinPolicy,
  DEFAULT_POLICY_PATH,
  defaultPolicy,
  loadPolicy,
  mergeSettings,
  parsePolicy,
  policyFiles,
} from './load.js';
export { formatIssue, parsePolicyFile, PolicyError, type ParsedFile, type PolicyIssue } from './parse.js';
export {
  PolicyFileSchema,
  type DomainSettings,
  type Estimator,
  type HostSettings,
  type MaxSpec,
  type MinSpec,
  type Policy,
  type PolicyFile,
  type Rule,
  type Settings,
  type SizeOrFraction,
  type SurplusMode,
} from './schema.js';
export { formatKib, parseDurationMs, parsePercent, parseRateKibPerS, parseSizeKib, UnitError } from './units.js';
