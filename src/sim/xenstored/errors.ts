import type { XsErrorName } from '../../wire/protocol.js';

/** A request failed with a protocol error name; the server answers it with an ERROR message. */
export class XsError extends Error {
  constructor(
    readonly code: XsErrorName,
    message?: string,
  ) {
    super(message ?? code);
    this.name = 'XsError';
  }
}

/** An in-process request (XenstoreSession) was answered with an error. */
export class XsRequestError extends Error {
  constructor(
    readonly code: XsErrorName,
    readonly op: string,
    readonly path?: string,
  ) {
    super(`${op}${path === undefined ? '' : ` ${path}`}: ${code}`);
    this.name = 'XsRequestError';
  }
}
