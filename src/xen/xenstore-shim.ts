/**
 * libxbdshim.so (native/xbdshim.c, built by `make build` into build/lib/): the watch waiter in one
 * native call — poll, drain xs_check_watch, and xs_read the changed node of "value" watches —
 * so an event and its value cost one worker-thread hand-off. Optional: without it the binding
 * polls with libc and the consumer reads the node itself. It reads at most 64 values per batch
 * (a flood must not slow the draining of libxenstore's unbounded event queue): later events of a
 * large batch come without a value, and the consumer reads those nodes itself.
 */
import { existsSync } from 'node:fs';
import { packagePath } from '../paths.js';
import koffi from 'koffi';
import { XenStoreError } from './xenstore-error.js';
import { errnoValue, type Ptr } from './xenstore-ffi.js';

type Callback<T> = (err: unknown, result: T) => void;

export interface LibShim {
  xbd_wait_events: {
    async(h: Ptr, watchFd: number, wakeFd: number, timeoutMs: number, valuePrefix: string,
      buf: Buffer, bufLen: number, used: number[], flags: number[], cb: Callback<number>): void;
  };
}

export const SHIM_WOKEN = 1;
export const SHIM_MORE = 2;
/** Room for at least a few worst-case records (8 KiB each) and ~100 report-sized ones. */
export const SHIM_BUFFER_BYTES = 64 * 1024;
/** Native tokens of watches that want the changed node's value start with this. */
export const VALUE_TOKEN_PREFIX = '\u0001v:';

/** Where `make build` puts the shim (build/lib/ of the checkout; lib/ in the Debian package). */
export function defaultShimPath(): string | undefined {
  for (const p of [packagePath('build', 'lib', 'libxbdshim.so'), packagePath('lib', 'libxbdshim.so')]) {
    if (existsSync(p)) return p;
  }
  return undefined;
}

const loaded = new Map<string, LibShim>();

/** Loads (once per path) the shim; a failure is one XenStoreError saying what to do. */
export function loadShim(path: string): LibShim {
  const cached = loaded.get(path);
  if (cached) return cached;
  let shim: LibShim;
  try {
    const lib = koffi.load(path);
    shim = {
      xbd_wait_events: lib.func('int xbd_wait_events(void *h, int watch_fd, int wake_fd, int timeout_ms, ' +
        'const char *value_prefix, _Out_ uint8_t *buf, uint32_t buf_len, _Out_ uint32_t *used, _Out_ uint32_t *flags)') as never,
    };
  } catch (err) {
    throw new XenStoreError('ENOENT', errnoValue('ENOENT'), 'open', path, false,
      `cannot load the watch event shim ${path}: ${(err as Error).message}; run 'make build' (it builds build/lib/libxbdshim.so)`);
  }
  loaded.set(path, shim);
  return shim;
}

export interface ShimEvent {
  path: string;
  token: string;
  /** The node's value; null: it does not exist; undefined: not read (or the read failed). */
  value: Buffer | null | undefined;
}

const ENOENT = errnoValue('ENOENT');

/** Decodes the records xbd_wait_events packed into `buf[0..used)`. */
export function decodeShimRecords(buf: Buffer, used: number, count: number): ShimEvent[] {
  const out: ShimEvent[] = [];
  let at = 0;
  for (let i = 0; i < count && at + 12 <= used; i++) {
    const plen = buf.readUInt32LE(at);
    const tlen = buf.readUInt32LE(at + 4);
    const v = buf.readInt32LE(at + 8);
    at += 12;
    const path = buf.toString('utf8', at, at + plen);
    at += plen;
    const token = buf.toString('utf8', at, at + tlen);
    at += tlen;
    let value: Buffer | null | undefined;
    if (v >= 0) {
      value = Buffer.from(buf.subarray(at, at + v));
      at += v;
    } else if (v === -ENOENT) {
      value = null;
    }
    out.push({ path, token, value });
  }
  return out;
}
