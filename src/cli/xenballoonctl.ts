#!/usr/bin/env node
/**
 * xenballoonctl: the operator's tool. Each subcommand lives in src/cli/commands/<name>.ts and
 * exports `summary` and `run(argv)`; this file only dispatches, so commands load lazily (the
 * simulator is not loaded to print `status`).
 */
import { runMain, UserError } from './errors.js';

interface CommandModule {
  summary: string;
  run(argv: string[]): Promise<number>;
}

const commands: Record<string, () => Promise<CommandModule>> = {
  'sim-create': () => import('./commands/sim-create.js'),
  'sim-destroy': () => import('./commands/sim-destroy.js'),
  'sim-host': () => import('./commands/sim-host.js'),
  simulate: () => import('./commands/simulate.js'),
  xenstored: () => import('./commands/xenstored.js'),
  policy: () => import('./commands/policy.js'),
  plan: () => import('./commands/plan.js'),
};

function usage(): string {
  const names = Object.keys(commands).sort();
  return ['usage: xenballoonctl COMMAND [ARGS...]', '', 'commands:', ...names.map((n) => `  ${n}`), '',
    'Run `xenballoonctl COMMAND --help` for a command\'s options.'].join('\n');
}

await runMain('xenballoonctl', async () => {
  const [name, ...rest] = process.argv.slice(2);
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 2 : 0;
  }
  const load = commands[name];
  if (!load) throw new UserError(`unknown command '${name}'; run 'xenballoonctl --help' for the list`, 2);
  const mod = await load();
  return mod.run(rest);
});
