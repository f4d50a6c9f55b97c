/**
 * The raw koffi declarations behind src/xen/xenstore.ts: libxenstore (Xen 4.17, soname .4) and
 * the few libc functions the binding needs (free, poll, pipe2, read, write, close, shutdown).
 *
 * Rules every caller follows (see docs/architecture.md, "libxenstore binding"):
 * - Everything that can wait on xenstored is called through `.async` (libuv worker threads);
 *   only calls that cannot block (xs_fileno, xs_check_watch, free, pipe I/O on our own
 *   non-blocking pipe) are made synchronously on the main thread.
 * - Functions that return memory are declared as returning `void *`, so koffi hands us the
 *   pointer (a bigint) and we copy then free() it exactly once.
 * - errno is read with koffi.errno() inside the async completion callback: koffi captures it on
 *   the worker right after the call and restores it for the duration of the callback.
 */
import koffi, { type LibraryHandle, type TypeObject } from 'koffi';

/** A native pointer as koffi 3 represents it. */
export type Ptr = bigint;

type Callback<T> = (err: unknown, result: T) => void;

/** A koffi function typed for our use: the sync form and its async form. */
interface Native<A extends unknown[], R> {
  (...args: A): R;
  async(...args: [...A, Callback<R>]): void;
}

export interface PollFd {
  fd: number;
  events: number;
  revents: number;
}

export interface XsPermStruct {
  id: number;
  perms: number;
}

export interface LibXenstore {
  xs_open: Native<[flags: number], Ptr | null>;
  xs_close: Native<[h: Ptr], void>;
  xs_fileno: Native<[h: Ptr], number>;
  xs_read: Native<[h: Ptr, t: number, path: string, len: number[]], Ptr | null>;
  xs_write: Native<[h: Ptr, t: number, path: string, data: Buffer, len: number], boolean>;
  xs_mkdir: Native<[h: Ptr, t: number, path: string], boolean>;
  xs_rm: Native<[h: Ptr, t: number, path: string], boolean>;
  xs_directory: Native<[h: Ptr, t: number, path: string, num: number[]], Ptr | null>;
  xs_get_permissions: Native<[h: Ptr, t: number, path: string, num: number[]], Ptr | null>;
  xs_set_permissions: Native<[h: Ptr, t: number, path: string, perms: XsPermStruct[], num: number], boolean>;
  xs_watch: Native<[h: Ptr, path: string, token: string], boolean>;
  xs_unwatch: Native<[h: Ptr, path: string, token: string], boolean>;
  xs_check_watch: Native<[h: Ptr], Ptr | null>;
  xs_transaction_start: Native<[h: Ptr], number>;
  xs_transaction_end: Native<[h: Ptr, t: number, abort: boolean], boolean>;
  xs_get_domain_path: Native<[h: Ptr, domid: number], Ptr | null>;
  xs_is_domain_introduced: Native<[h: Ptr, domid: number], boolean>;
  xs_introduce_domain: Native<[h: Ptr, domid: number, mfn: number, evtchn: number], boolean>;
  xs_release_domain: Native<[h: Ptr, domid: number], boolean>;
}

export interface LibC {
  free: Native<[p: Ptr], void>;
  poll: Native<[fds: PollFd[], nfds: number, timeoutMs: number], number>;
  pipe2: Native<[fds: number[], flags: number], number>;
  read: Native<[fd: number, buf: Buffer, n: number], number>;
  write: Native<[fd: number, buf: Buffer, n: number], number>;
  close: Native<[fd: number], number>;
  shutdown: Native<[fd: number, how: number], number>;
}

export const POLLIN = 0x001;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const SHUT_RDWR = 2;
/** XS_PERM_* bits that carry the access kind; the others are libxenstore-internal. */
export const XS_PERM_MASK = 0x3;

let libc: LibC | undefined;
let permType: TypeObject | undefined;
const xenstoreLibs = new Map<string, LibXenstore>();

/** Loads (once) and returns libc's functions. */
export function loadLibC(): LibC {
  if (libc) return libc;
  let lib: LibraryHandle;
  try {
    lib = koffi.load('libc.so.6');
  } catch {
    lib = koffi.load(null); // non-glibc: the process's own symbols include libc
  }
  const pollfd = koffi.struct('xenballoond_pollfd', { fd: 'int', events: 'short', revents: 'short' });
  libc = {
    free: lib.func('void free(void *p)') as never,
    poll: lib.func('poll', 'int', [koffi.inout(koffi.pointer(pollfd)), 'unsigned long', 'int']) as never,
    pipe2: lib.func('int pipe2(_Out_ int *fds, int flags)') as never,
    read: lib.func('intptr_t read(int fd, _Out_ uint8_t *buf, size_t n)') as never,
    write: lib.func('intptr_t write(int fd, const uint8_t *buf, size_t n)') as never,
    close: lib.func('int close(int fd)') as never,
    shutdown: lib.func('int shutdown(int fd, int how)') as never,
  };
  return libc;
}

/**
 * Loads (once per path) libxenstore. Throws the loader's error when the library is missing;
 * the caller turns that into a message naming the Debian package.
 */
export function loadLibXenstore(path = 'libxenstore.so.4'): LibXenstore {
  const cached = xenstoreLibs.get(path);
  if (cached) return cached;
  const lib = koffi.load(path);
  permType ??= koffi.struct('xenballoond_xs_permissions', { id: 'unsigned int', perms: 'unsigned int' });
  const f = (decl: string) => lib.func(decl) as never;
  const x: LibXenstore = {
    xs_open: f('void *xs_open(unsigned long flags)'),
    xs_close: f('void xs_close(void *h)'),
    xs_fileno: f('int xs_fileno(void *h)'),
    xs_read: f('void *xs_read(void *h, uint32_t t, const char *path, _Out_ uint32_t *len)'),
    xs_write: f('bool xs_write(void *h, uint32_t t, const char *path, const uint8_t *data, uint32_t len)'),
    xs_mkdir: f('bool xs_mkdir(void *h, uint32_t t, const char *path)'),
    xs_rm: f('bool xs_rm(void *h, uint32_t t, const char *path)'),
    xs_directory: f('void *xs_directory(void *h, uint32_t t, const char *path, _Out_ uint32_t *num)'),
    xs_get_permissions: f('void *xs_get_permissions(void *h, uint32_t t, const char *path, _Out_ uint32_t *num)'),
    xs_set_permissions: lib.func('xs_set_permissions', 'bool',
      ['void *', 'uint32_t', 'const char *', koffi.pointer(permType), 'uint32_t']) as never,
    xs_watch: f('bool xs_watch(void *h, const char *path, const char *token)'),
    xs_unwatch: f('bool xs_unwatch(void *h, const char *path, const char *token)'),
    xs_check_watch: f('void *xs_check_watch(void *h)'),
    xs_transaction_start: f('uint32_t xs_transaction_start(void *h)'),
    xs_transaction_end: f('bool xs_transaction_end(void *h, uint32_t t, bool abort)'),
    xs_get_domain_path: f('void *xs_get_domain_path(void *h, unsigned int domid)'),
    xs_is_domain_introduced: f('bool xs_is_domain_introduced(void *h, unsigned int domid)'),
    xs_introduce_domain: f('bool xs_introduce_domain(void *h, unsigned int domid, unsigned long mfn, unsigned int evtchn)'),
    xs_release_domain: f('bool xs_release_domain(void *h, unsigned int domid)'),
  };
  xenstoreLibs.set(path, x);
  return x;
}

/** errno of the most recent native call on this thread (valid inside an async completion). */
export function lastErrno(): number {
  return koffi.errno();
}

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(koffi.os.errno)) {
  // Several names share a number (EAGAIN/EWOULDBLOCK, EDEADLK/EDEADLOCK…): keep the first,
  // which is the conventional one in koffi's table.
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}
errnoNames.set(koffi.os.errno.EAGAIN ?? 11, 'EAGAIN');

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

export function errnoValue(name: string): number {
  return koffi.os.errno[name] ?? 0;
}

/** Copies `len` bytes at `ptr` into a fresh Buffer (the C memory can then be freed). */
export function copyBytes(ptr: Ptr, len: number): Buffer {
  if (len === 0) return Buffer.alloc(0);
  return Buffer.from(new Uint8Array(koffi.view(ptr, len)));
}

/** Decodes the `count` NUL-terminated strings a `char **` block points to. */
export function decodeStringArray(ptr: Ptr, count: number): string[] {
  if (count === 0) return [];
  return koffi.decode(ptr, 'str', count) as string[];
}

/** Decodes the NUL-terminated string at `ptr`. */
export function decodeCString(ptr: Ptr): string {
  return koffi.decode.string(ptr);
}

/** Decodes `count` struct xs_permissions at `ptr` as [id, perms] pairs. */
export function decodePerms(ptr: Ptr, count: number): XsPermStruct[] {
  if (count === 0) return [];
  const words = new Uint32Array(koffi.view(ptr, count * 8));
  const out: XsPermStruct[] = [];
  for (let i = 0; i < count; i++) out.push({ id: words[2 * i] ?? 0, perms: words[2 * i + 1] ?? 0 });
  return out;
}

/** The first member of libxenstore's private struct xs_handle is `int fd` (since 2005). */
export function handleSocketFd(h: Ptr): number {
  return koffi.decode(h, 'int') as number;
}
