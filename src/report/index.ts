/** Guest reports: parsing every format, the v1 encoder, tracking per domain, provisioning. */
export * from './limits.js';
export * from './result.js';
export type { GuestValue } from './text.js';
export { checkGuestText } from './text.js';
export { guestReportSchema } from './schema.js';
export * from './proc.js';
export * from './v1.js';
export * from './paper.js';
export * from './qubes.js';
export * from './domain.js';
export * from './tracker.js';
export * from './provision.js';
export type * from './types.js';
