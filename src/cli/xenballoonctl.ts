#!/usr/bin/env node
/**
 * xenballoonctl: the operator's tool. Each subcommand lives in src/cli/commands/<name>.ts and
 * exports `summary` and `run(argv)`; this file only dispatches, so commands load lazily (the
 * simulator is not loaded to print `status`).
 */
import { parseArgs } from 'node:util';
import { versionLine } from '../version.js';
import { runMain, UserError } from './errors.js';

interface CommandModule {
  summary: string;
  run(argv: string[]): Promise<number>;
}

const commands: Record<string, () => Promise<CommandModule>> = {
  status: () => import('./commands/status.js'),
  top: () => import('./commands/top.js'),
  explain: () => import('./commands/explain.js'),
  reserve: () => import('./commands/reserve.js'),
  release: () => import('./commands/release.js'),
  pin: () => import('./commands/pin.js'),
  unpin: () => import('./commands/unpin.js'),
  launch: () => import('./commands/launch.js'),
  reload: () => import('./commands/reload.js'),
  'sim-create': () => import('./commands/sim-create.js'),
  'sim-destroy': () => import('./commands/sim-destroy.js'),
  'sim-flood': () => import('./commands/sim-flood.js'),
  'sim-host': () => import('./commands/sim-host.js'),
  simulate: () => import('./commands/simulate.js'),
  xenstored: () => import('./commands/xenstored.js'),
  policy: () => import('./commands/policy.js'),
  plan: () => import('./commands/plan.js'),
  capacity: () => import('./commands/capacity.js'),
  snapshot: () => import('./commands/snapshot.js'),
};

/** Help is the one place every command is loaded: for its one-line summary. */
async function usage(): Promise<string> {
  const names = Object.keys(commands).sort();
  const width = Math.max(...names.map((n) => n.length));
  const lines = await Promise.all(names.map(async (n) => {
    const mod = await (commands[n] as () => Promise<CommandModule>)();
    return `  ${n.padEnd(width)}  ${mod.summary}`;
  }));
  return ['usage: xenballoonctl [--control PATH] COMMAND [ARGS...]', '       xenballoonctl --version', '', 'commands:', ...lines, '',
    'Run `xenballoonctl COMMAND --help` for a command\'s options.',
    'Exit status: 0 ok; 1 failed; 2 bad usage; 3 the daemon does not answer; 70 a bug (see xenballoonctl(8)).'].join('\n');
}

/**
 * `xenballoonctl [--control PATH] COMMAND ARGS…`: a global option before the command is handed
 * to the command itself (each control command accepts --control), so every command parses its
 * whole argv with util.parseArgs.
 */
function splitGlobal(argv: string[]): { name: string | undefined; rest: string[] } {
  const { tokens } = parseArgs({ args: argv, options: { control: { type: 'string' } }, strict: false, allowPositionals: true, tokens: true });
  const first = tokens.find((t) => t.kind === 'positional' || (t.kind === 'option' && t.name !== 'control'));
  if (!first || first.kind !== 'positional') return { name: argv[0], rest: argv.slice(1) };
  const globals = argv.slice(0, first.index);
  return { name: first.value, rest: [...globals, ...argv.slice(first.index + 1)] };
}

await runMain('xenballoonctl', async () => {
  const { name, rest } = splitGlobal(process.argv.slice(2));
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write((await usage()) + '\n');
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    process.stdout.write(versionLine('xenballoonctl') + '\n');
    return 0;
  }
  const load = commands[name];
  if (!load) throw new UserError(`unknown command '${name}'; run 'xenballoonctl --help' for the list`, 2);
  const mod = await load();
  return mod.run(rest);
});
