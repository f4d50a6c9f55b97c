/** Our xenstore server (Xen 4.17 semantics), usable in-process or over unix sockets. */
export { XenstoredServer, SocketPathError, prepareSocketPath, MAX_SOCKET_PATH_BYTES, type XenstoredServerOptions } from './server.js';
export { XenstoreSession, type WatchEvent, type SessionOptions } from './session.js';
export { XenstoreCore, Connection, type CoreStats } from './core.js';
export { XsRequestError, XsError } from './errors.js';
export { DEFAULT_LIMITS, type XenstoredLimits } from './limits.js';
export { provisionDomain, initDom0, type ProvisionOptions } from './provision.js';
export { nodeRecordSize } from './store.js';
export { bootServer, type DomainSocketSpec } from './bootstrap.js';
