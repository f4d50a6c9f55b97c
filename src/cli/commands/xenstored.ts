/**
 * `xenballoonctl xenstored --socket PATH [--domain-socket DOMID=PATH …]`: our xenstore server in
 * the foreground. Clients of --socket are dom0; clients of a domain socket act as that guest.
 * Each domain gets a libxl-like home and is introduced. Logs (pino, JSON) go to stderr; SIGTERM
 * or SIGINT stops it cleanly.
 */
import pino from 'pino';
import { bootServer, SocketPathError, XenstoredServer } from '../../sim/xenstored/index.js';
import { parseCommandArgs, parseLogLevel, printUsage } from '../args.js';
import { UserError } from '../errors.js';
import { onStopSignal } from '../sim-commands.js';

export const summary = 'run the simulation xenstore server (dom0 socket plus per-guest sockets)';

const USAGE = `usage: xenballoonctl xenstored --socket PATH [--domain-socket DOMID=PATH ...] [--log-level LEVEL]

Runs a xenstore server with Xen 4.17's semantics in the foreground.
  --socket PATH               dom0's socket (privileged); use it with XENSTORED_PATH=PATH
  --domain-socket DOMID=PATH  a socket whose clients act as guest DOMID (repeatable); the
                              guest's /local/domain/DOMID is created as xl would and introduced
  --log-level LEVEL           fatal, error, warn, info (default), debug, trace, silent
Stops on SIGTERM or SIGINT.`;

export function parseDomainSocket(spec: string): { domid: number; path: string } {
  const m = /^([0-9]+)=(.+)$/.exec(spec);
  if (!m) throw new UserError(`--domain-socket '${spec}': expected DOMID=PATH, e.g. 1=/run/xenballoon/dom1.sock`, 2);
  const domid = Number(m[1]);
  if (domid < 1 || domid >= 0x7ff0) throw new UserError(`--domain-socket '${spec}': DOMID must be between 1 and 32751`, 2);
  return { domid, path: m[2]! };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('xenstored', {
    args: argv,
    options: {
      socket: { type: 'string' },
      'domain-socket': { type: 'string', multiple: true },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return printUsage(USAGE);
  if (!values.socket) throw new UserError("missing --socket PATH; run 'xenballoonctl xenstored --help'", 2);
  const level = parseLogLevel(values['log-level']);
  const domains = (values['domain-socket'] ?? []).map(parseDomainSocket);
  const seen = new Set<number>();
  for (const d of domains) {
    if (seen.has(d.domid)) throw new UserError(`--domain-socket: domain ${d.domid} given twice`, 2);
    seen.add(d.domid);
  }

  // Listen for signals before the socket exists, so a client that sees the socket can always
  // stop the server cleanly.
  const stopped = new Promise<NodeJS.Signals>((resolve) => onStopSignal(resolve));
  const log = pino({ name: 'xenstored', level }, pino.destination(2));
  const server = new XenstoredServer({ logger: log });
  try {
    await bootServer(server, values.socket, domains);
  } catch (err) {
    await server.close();
    if (err instanceof SocketPathError) throw new UserError(err.message);
    throw err;
  }
  log.info({ socket: values.socket, domains: Object.fromEntries(domains.map((d) => [d.domid, d.path])) }, 'xenstored ready');

  const signal = await stopped;
  log.info({ signal, ...server.stats() }, 'stopping');
  await server.close();
  return 0;
}
