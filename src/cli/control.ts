/**
 * What the control-socket subcommands share: the socket path (`xenballoonctl --control PATH`,
 * else $XENBALLOOND_CONTROL, else the real default) and turning the client's errors into the
 * one-line UserErrors the CLI prints.
 */
import { ControlClient, ControlConnectionError, ControlRequestError } from '../daemon/control-client.js';
import { DEFAULT_CONTROL_PATH, type Request, type ResponseFor } from '../daemon/control-protocol.js';
import { UserError } from './errors.js';

/** Option shared by every control subcommand (the dispatcher moves a leading --control here). */
export const controlOption = { control: { type: 'string' } } as const;

export function controlPath(given: string | undefined): string {
  return given ?? process.env.XENBALLOOND_CONTROL ?? DEFAULT_CONTROL_PATH;
}

export function asUserError(err: unknown): unknown {
  if (err instanceof ControlConnectionError) return new UserError(err.message, 3);
  if (err instanceof ControlRequestError) return new UserError(err.message, 1);
  return err;
}

export async function connect(path: string): Promise<ControlClient> {
  try {
    return await ControlClient.connect(path);
  } catch (err) {
    throw asUserError(err);
  }
}

export async function request<Op extends Request['op']>(client: ControlClient, req: Extract<Request, { op: Op }>): Promise<ResponseFor<Op>> {
  try {
    return await client.request(req);
  } catch (err) {
    throw asUserError(err);
  }
}

/** Connects, asks once, closes. */
export async function ask<Op extends Request['op']>(path: string, req: Extract<Request, { op: Op }>): Promise<ResponseFor<Op>> {
  const c = await connect(path);
  try {
    return await request(c, req);
  } finally {
    c.close();
  }
}
