/**
 * What a guest told us about its memory, after validation (src/report parses every format into
 * this). Every number is finite, non-negative and within the bounds the parser enforces; a field
 * the format does not carry is null, never 0, so the core can tell "zero" from "unknown".
 *
 * The types are inferred from the zod schemas in schema.ts (the fields and their meaning are
 * documented there), so validation and types cannot drift apart.
 *
 * Contract shared by src/report (producer), src/core (consumer) and src/sim (producer of
 * simulated reports). Extend freely; do not rename.
 */
import type { z } from 'zod';
import type {
  guestReportSchema,
  reportCountersSchema,
  reportFormatSchema,
  reportMemSchema,
  reportPressureSchema,
} from './schema.js';

export type ReportFormat = z.infer<typeof reportFormatSchema>;
export type ReportMem = z.infer<typeof reportMemSchema>;
export type ReportCounters = z.infer<typeof reportCountersSchema>;
export type ReportPressure = z.infer<typeof reportPressureSchema>;
export type GuestReport = z.infer<typeof guestReportSchema>;
