/**
 * xenballoonctl sim-host --scenario NAME|FILE --dir DIR [--seed N] [--speed X]
 *                        [--launch free|none] [--launch-command CMD] [--duration D | --forever]
 *
 * The simulated host in real time (x speed), for the real daemon and tools: DIR/xenstored.sock
 * (dom0), DIR/dom<ID>.sock (each guest), DIR/hypervisor.sock (docs/simulator.md). Stops at the
 * end of the scenario (or --duration) or on SIGTERM/SIGINT, prints a summary and writes
 * results, timelines and chart.svg into DIR.
 */
import { resolve } from 'node:path';
import pino from 'pino';
import { loadScenario, ScenarioError } from '../../sim/scenario/load.js';
import { type Fault, FaultError, parseFault } from '../../sim/sim-host/faults.js';
import { type LaunchMode, SimHost } from '../../sim/sim-host/runtime.js';
import { SocketPathError } from '../../sim/xenstored/server.js';
import { parseDurationMs } from '../../sim/units.js';
import { parseCommandArgs, parseLogLevel, printUsage } from '../args.js';
import { UserError } from '../errors.js';
import { onStopSignal } from '../sim-commands.js';

export const summary = 'run a simulated Xen host in real time (xenstored.sock, dom<ID>.sock, hypervisor.sock) for the real daemon';

const USAGE = `usage: xenballoonctl sim-host --scenario NAME|FILE --dir DIR [--seed N] [--speed X]
                            [--launch free|none] [--launch-command CMD] [--duration D | --forever]
                            [--inject FAULT]... [--log-level LEVEL]

  --scenario NAME|FILE   the host, dom0, guests and workloads (config/scenarios/NAME.yaml or a file)
  --dir DIR              where the sockets and results go (created if missing)
  --seed N               random seed (default: the scenario's)
  --speed X              simulated seconds per wall-clock second (default 1)
  --launch free          launch the scenario's guests one after another while free memory allows
                         (xl's own check; the default without --launch-command)
  --launch none          launch nothing; create domains through hypervisor.sock / sim-create
  --launch-command CMD   launch each guest by running CMD with /bin/sh; it must create the domain
                         (e.g. through xenballoonctl sim-create) and exit 0; a failure stops
                         launching. CMD sees XB_SIM_DIR XB_NAME XB_TEMPLATE XB_MEMORY XB_MAXMEM
                         XB_MEMORY_KIB XB_MAXMEM_KIB in its environment.
  --duration D           simulated time to run (default: the scenario's), e.g. 10m
  --forever              run until stopped
  --inject FAULT         a fault, repeatable (docs/simulator.md):
                           setmaxmem-eperm:NAME       setmaxmem on domain NAME fails with EPERM
                           xenstore-stall:SECONDS@AT  from simulated time AT, xenstored answers
                                                      nobody for SECONDS (e.g. 10@30s)
  --log-level LEVEL      fatal, error, warn, info (default), debug, silent; logs go to stderr`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('sim-host', {
    args: argv,
    options: {
      scenario: { type: 'string' },
      dir: { type: 'string' },
      seed: { type: 'string' },
      speed: { type: 'string' },
      launch: { type: 'string' },
      'launch-command': { type: 'string' },
      duration: { type: 'string' },
      forever: { type: 'boolean', default: false },
      inject: { type: 'string', multiple: true },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: false,
  });
  if (values.help) return printUsage(USAGE);
  if (!values.scenario) throw new UserError("--scenario is required (e.g. --scenario paper-eatmem-2g); run 'xenballoonctl sim-host --help'", 2);
  if (!values.dir) throw new UserError("--dir is required: the directory for the sockets; run 'xenballoonctl sim-host --help'", 2);
  const speed = values.speed === undefined ? 1 : Number(values.speed);
  if (!Number.isFinite(speed) || speed <= 0 || speed > 10_000) throw new UserError(`--speed must be a number above 0 (at most 10000), not '${values.speed}'`, 2);
  let seedOverride: number | null = null;
  if (values.seed !== undefined) {
    if (!/^\d+$/.test(values.seed) || Number(values.seed) > 0xffffffff) throw new UserError(`--seed must be a whole number from 0 to 4294967295, not '${values.seed}'`, 2);
    seedOverride = Number(values.seed);
  }
  let launch: LaunchMode;
  if (values['launch-command'] !== undefined) {
    if (values.launch !== undefined) throw new UserError('give either --launch or --launch-command, not both', 2);
    if (values['launch-command'].trim() === '') throw new UserError('--launch-command is empty', 2);
    launch = { kind: 'command', command: values['launch-command'] };
  } else if (values.launch === undefined || values.launch === 'free') {
    launch = { kind: 'free' };
  } else if (values.launch === 'none') {
    launch = { kind: 'none' };
  } else {
    throw new UserError(`--launch takes free or none, not '${values.launch}' (or use --launch-command CMD)`, 2);
  }
  const level = parseLogLevel(values['log-level']);
  let faults: Fault[];
  try {
    faults = (values.inject ?? []).map(parseFault);
  } catch (err) {
    if (err instanceof FaultError) throw new UserError(err.message, 2);
    throw err;
  }
  if (values.forever && values.duration !== undefined) throw new UserError('give either --duration or --forever, not both', 2);

  let scenario;
  try {
    scenario = loadScenario(values.scenario);
  } catch (err) {
    if (err instanceof ScenarioError) throw new UserError(err.message, 1);
    throw err;
  }
  let durationMs: number | null = scenario.duration;
  if (values.forever) durationMs = null;
  else if (values.duration !== undefined) {
    try {
      durationMs = parseDurationMs(values.duration);
    } catch (err) {
      throw new UserError(`--duration: ${(err as Error).message}`, 2);
    }
  }
  const dir = resolve(values.dir);
  const logger = pino({ level, base: { svc: 'sim-host' } }, pino.destination(2));
  const host = new SimHost({ scenario, dir, seed: seedOverride ?? scenario.seed, speed, launch, durationMs, logger, faults });
  try {
    await host.start();
  } catch (err) {
    await host.stop().catch(() => undefined);
    if (err instanceof SocketPathError) throw new UserError(err.message, 1);
    throw err;
  }
  process.stdout.write(`sim-host: ready: ${dir} (xenstored.sock, hypervisor.sock, dom<ID>.sock); scenario ${scenario.name}, seed ${host.opts.seed}, speed ${speed}\n`);
  const stopListening = onStopSignal(() => void host.stop());
  const result = await host.finished;
  stopListening();
  process.stdout.write(`${host.summary(result)}\nresults and chart: ${dir}/results.json ${dir}/chart.svg\n`);
  return 0;
}
