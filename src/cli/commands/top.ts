import { parseArgs } from 'node:util';
import type { ControlClient } from '../../daemon/control-client.js';
import { UserError } from '../errors.js';
import { connect, controlOption, controlPath, request } from '../control.js';
import { renderStatus } from '../render-status.js';
import { durationArg } from './reserve.js';

export const summary = 'a live, xentop-like table of every domain\'s memory as xenballoond sees and steers it';

const HELP = `usage: xenballoonctl [--control PATH] top [--delay 1s] [--iterations N]

Redraws the daemon's status every --delay: per domain name, id, current memory, balloon target,
estimated need, policy min/max and weight, swap-in rate, memory pressure (PSI some avg10) and
flags (stuck, uncooperative, no-report…); the host line shows total, free and reserved memory.
q or Ctrl-C quits. Without a terminal, prints one table per refresh.
`;

const CLEAR = '\x1b[H\x1b[2J';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...controlOption, delay: { type: 'string', short: 'd' }, iterations: { type: 'string', short: 'n' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const delay = durationArg(values.delay, '--delay') ?? 1000;
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
        text = renderStatus(status);
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
