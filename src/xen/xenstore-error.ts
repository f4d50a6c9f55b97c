/**
 * The one error type the libxenstore binding throws. `code` is an errno name: the one
 * libxenstore reported (ENOENT, EACCES, EAGAIN, EINVAL, E2BIG, EPIPE, ECONNRESET, EBADF…) or one
 * of the binding's own:
 * - ETIMEDOUT: the call did not complete within the handle's timeout (xenstored hung?);
 * - ENOTCONN: the handle is disconnected or closed, the call was not sent.
 * `connectionLost` is true when the call failed because the connection to xenstored is gone
 * (reconnect() makes a new one).
 */
export class XenStoreError extends Error {
  override readonly name = 'XenStoreError';

  constructor(
    /** errno name, e.g. 'ENOENT'. */
    readonly code: string,
    /** numeric errno (0 when the error is the binding's own and has no errno). */
    readonly errno: number,
    /** the operation: 'read', 'write', 'watch', 'transaction_end', 'open'… */
    readonly op: string,
    /** the node path (or socket path for 'open'); undefined for operations without one. */
    readonly path: string | undefined,
    readonly connectionLost = false,
    detail?: string,
  ) {
    super(`xenstore ${op}${path === undefined ? '' : ` ${path}`}: ${code}${detail ? ` (${detail})` : ''}`);
  }
}

export function isXenStoreError(err: unknown, code?: string): err is XenStoreError {
  return err instanceof XenStoreError && (code === undefined || err.code === code);
}

/** True for the error a read of a missing node gives. */
export function isNotFound(err: unknown): boolean {
  return isXenStoreError(err, 'ENOENT');
}
