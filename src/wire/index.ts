/** The xenstore wire protocol as bytes: constants, frame codec, payload helpers. No I/O. */
export * from './protocol.js';
export * from './frame.js';
export * from './payload.js';
