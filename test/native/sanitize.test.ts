/**
 * The C publisher under AddressSanitizer and UBSan (make build-native-sanitize), fed mutated
 * /proc files: it never crashes or misbehaves in memory, and whatever record it prints is one
 * the daemon accepts. The kernel is not an adversary, but a publisher that a truncated or odd
 * file can crash would silently stop reporting.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseV1 } from '../../src/report/v1.js';
import { procFixtures, repoRoot, tempDir } from '../helpers/native.js';

const bin = join(repoRoot, 'build/sanitize/xenballoon-report');
const LAB = join(procFixtures, 'constructed-5.10-debian11-hvm');
const files = ['meminfo', 'vmstat', 'uptime', 'pressure/memory', 'sys/devices/system/xen_memory/xen_memory0/info/current_kb'];
const originals = Object.fromEntries(files.map((f) => [f, readFileSync(join(LAB, f), 'latin1')]));

const t = tempDir('sanitize');
afterAll(() => t.cleanup());

const mutation = fc.oneof(
  fc.tuple(fc.nat(), fc.nat({ max: 64 })).map(([a, n]) => (s: string) => {
    const i = a % (s.length + 1);
    return s.slice(0, i) + s.slice(i + n);
  }),
  fc.tuple(fc.nat(), fc.string({ unit: 'binary', maxLength: 24 })).map(([a, ins]) => (s: string) => {
    const i = a % (s.length + 1);
    return s.slice(0, i) + ins + s.slice(i);
  }),
  fc.tuple(fc.nat(), fc.constantFrom('99999999999999999999999', '-1', '', '18446744073709551615', '1.5', ' ')).map(
    ([a, num]) =>
      (s: string) => {
        let k = 0;
        return s.replace(/[0-9]+/g, (m) => (k++ === a % 200 ? num : m));
      },
  ),
  fc.nat().map((a) => (s: string) => s.slice(0, a % (s.length + 1))),
  fc.constant(() => ''),
);

describe.skipIf(!existsSync(bin))('xenballoon-report under ASan/UBSan', () => {
  it('survives mutated /proc files and prints only acceptable records', () => {
    let n = 0;
    fc.assert(
      fc.property(fc.constantFrom(...files), fc.array(mutation, { minLength: 1, maxLength: 3 }), (file, muts) => {
        const dir = join(t.dir, `case${n++}`);
        for (const f of files) {
          mkdirSync(join(dir, f, '..'), { recursive: true });
          const text = f === file ? muts.reduce((s, m) => m(s), originals[f] ?? '') : originals[f] ?? '';
          writeFileSync(join(dir, f), Buffer.from(text, 'latin1'));
        }
        const r = spawnSync(bin, ['--once', '--print', '--proc', dir, '--sys', join(dir, 'sys')], {
          encoding: 'utf8',
          env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0', UBSAN_OPTIONS: 'halt_on_error=1' },
        });
        rmSync(dir, { recursive: true, force: true });
        expect(r.stderr).not.toMatch(/Sanitizer|runtime error/);
        expect([0, 1]).toContain(r.status);
        if (r.status === 0) {
          const p = parseV1(r.stdout);
          expect(p.ok ? 'ok' : `${p.reason}: ${p.detail}`).toBe('ok');
        } else {
          expect(r.stdout).toBe('');
          expect(r.stderr.trim().split('\n')).toHaveLength(1);
        }
      }),
      { numRuns: 100 },
    );
  });
});
