import { parseArgs } from 'node:util';
import type { ControlClient } from '../../daemon/control-client.js';
import { UserError } from '../errors.js';
import { connect, controlOption, controlPath, request } from '../control.js';
import { renderStatus, SORT_KEYS, type SortKey } from '../render-status.js';
import { durationArg } from './reserve.js';

export const summary = 'a live, xentop-like table of every domain\'s memory as xenballoond sees and steers it';

const HELP = `usage: xenballoonctl [--control PATH] top [-d DELAY] [-n ITERATIONS] [-s KEY]

Redraws the daemon's status every DELAY: per domain name, id, current memory, balloon target,
estimated need, policy min/max and weight, swap-in rate, memory pressure (PSI some avg10) and
flags (stuck, uncooperative, no-report…); the host line shows total, free and reserved memory.
  -d, --delay DELAY        seconds between refreshes, as xentop's -d (1, 0.5; or 500ms, 2s); default 1
  -n, --iterations N       refresh N times, then exit
  -s, --sort KEY           ${SORT_KEYS.join(', ')} (numbers largest first); default id
On a terminal the table fits its width (WEIGHT, MIN, MAX, … are left out first) and q or Ctrl-C
quits; without one, one full table is printed per refresh.
`;

/** xentop's -d: a bare number is seconds; a duration with a unit is read as one. */
export function delayArg(text: string | undefined): number | undefined {
  if (text !== undefined && /^\s*\d+(\.\d+)?\s*$/.test(text)) return Math.round(Number(text) * 1000);
  return durationArg(text, '--delay');
}

function sortArg(text: string | undefined): SortKey | undefined {
  if (text === undefined) return undefined;
  const key = text.toLowerCase();
  if (!(SORT_KEYS as readonly string[]).includes(key)) throw new UserError(`--sort '${text}': expected one of ${SORT_KEYS.join(', ')}`, 2);
  return key as SortKey;
}

const CLEAR = '\x1b[H\x1b[2J';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...controlOption, delay: { type: 'string', short: 'd' }, iterations: { type: 'string', short: 'n' },
      sort: { type: 'string', short: 's' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const delay = delayArg(values.delay) ?? 1000;
  const sort = sortArg(values.sort);
  if (delay < 100) throw new UserError('--delay must be at least 100ms', 2);
  const iterations = values.iterations === undefined ? Infinity : Number(values.iterations);
  if (!(iterations > 0)) throw new UserError('--iterations must be a positive number', 2);
  const path = controlPath(values.control);
  const tty = process.stdout.isTTY === true;

  let quit = false;
  let wake: (() => void) | null = null;
  const stop = () => {
    quit = true;
    wake?.();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const stdin = process.stdin;
  if (tty && stdin.isTTY) {
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', (b: Buffer) => {
      if (b.includes(0x71) || b.includes(0x03)) stop(); // q, Ctrl-C
    });
  }
  let client: ControlClient | null = null;
  try {
    for (let i = 0; i < iterations && !quit; i++) {
      let text: string;
      try {
        client ??= await connect(path);
        const { status } = await request(client, { op: 'status' });
        text = renderStatus(status, { ...(sort ? { sort } : {}), ...(tty && process.stdout.columns ? { width: process.stdout.columns } : {}) });
      } catch (err) {
        client?.close();
        client = null;
        // The daemon restarting is exactly when an operator is watching: keep trying.
        if (!(err instanceof UserError) || iterations !== Infinity) throw err;
        text = `${err.message}\n(retrying every ${delay} ms; q to quit)\n`;
      }
      process.stdout.write(tty ? CLEAR + text : (i > 0 ? '\n' : '') + text);
      if (i + 1 < iterations && !quit) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = null;
      }
    }
  } finally {
    client?.close();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    if (tty && stdin.isTTY) {
      stdin.setRawMode(false);
      stdin.pause();
    }
  }
  return 0;
}
