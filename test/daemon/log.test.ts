import { closeSync, fstatSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { journalLine, SafeWriter, stdoutIsJournal, syslogPriority } from '../../src/daemon/log-output.js';
import { createLogger, droppedLogLines } from '../../src/daemon/log.js';

describe('log output', () => {
  it('gives every journal line its syslog priority and a readable message', () => {
    const line = journalLine(JSON.stringify({ level: 40, time: 1, pid: 2, hostname: 'h', domid: 3, domain: 'web-1', msg: 'would set web-1 142M → 120M' }));
    expect(line).toBe('<4>would set web-1 142M → 120M domid=3 domain=web-1\n');
    expect(journalLine(JSON.stringify({ level: 50, msg: 'x' }))).toMatch(/^<3>x\n$/);
    expect(journalLine(JSON.stringify({ level: 30, msg: 'two\nlines' }))).not.toMatch(/two\n/);
    expect([60, 50, 40, 30, 20, 10].map(syslogPriority)).toEqual([2, 3, 4, 6, 7, 7]);
  });

  it('recognises the journal by JOURNAL_STREAM, and nothing else', () => {
    const path = join(tmpdir(), `i15ops-journal-${process.pid}`);
    const fd = openSync(path, 'w');
    try {
      const st = fstatSync(fd, { bigint: true });
      expect(stdoutIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }, fd)).toBe(true);
      expect(stdoutIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino + 1n}` }, fd)).toBe(false);
      expect(stdoutIsJournal({}, fd)).toBe(false);
    } finally {
      closeSync(fd);
    }
  });

  it('drops and counts lines a full device refuses, without throwing', () => {
    const fd = openSync('/dev/full', 'w');
    try {
      const w = new SafeWriter({ format: 'journal', fd });
      expect(() => { for (let i = 0; i < 3; i++) w.write('{"level":30,"msg":"x"}\n'); }).not.toThrow();
      expect(w.dropped).toBe(3);
    } finally {
      closeSync(fd);
    }
  });

  it('says once how many lines were lost when the destination works again', () => {
    const out: string[] = [];
    let failing = true;
    const sink = { write(s: string) {
      if (failing) throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
      out.push(s);
    } };
    const log = createLogger({ level: 'info', format: 'json', destination: sink });
    log.info('one');
    log.warn('two');
    expect(droppedLogLines(log)).toBe(2);
    failing = false;
    log.info('three');
    log.info('four');
    const msgs = out.map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(msgs).toEqual(['2 log line(s) were lost: the log destination failed (ENOSPC); logging works again', 'three', 'four']);
  });
});
