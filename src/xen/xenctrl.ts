/**
 * The Hypervisor backend for real Xen: libxenctrl through koffi. Every call runs on koffi's
 * worker threads (never blocks the event loop) and calls are serialised on one handle, so the
 * errno koffi hands back belongs to the call that failed.
 *
 * Struct layouts come from xenctrl-layout.ts and are chosen by the release the hypervisor
 * reports; a release whose layouts were never verified is refused at open.
 */
import koffi, { type LibraryHandle } from 'koffi';
import { getSystemErrorMap } from 'node:util';
import { UserError } from '../cli/errors.js';
import type { DomainInfo, Hypervisor, PhysInfo } from './hypervisor.js';
import {
  DOMID_FIRST_RESERVED,
  XENCTRL_LAYOUTS,
  XENVER_EXTRAVERSION,
  XENVER_VERSION,
  XEN_EXTRAVERSION_LEN,
  decodeDomaininfo,
  decodePhysinfo,
  layoutFor,
  listAllDomains,
  releaseFromVersion,
  supportedReleases,
  type XenctrlLayout,
} from './xenctrl-layout.js';

const OPEN_HINT = 'is this dom0 of a Xen host, running as root?';
/** xentoollog's XTL_NUM_LEVELS: a logger with this minimum level never writes anything. */
const XTL_SILENT = 11;
/** Entries fetched per xc_domain_getinfolist call. */
const DOMAIN_BATCH = 256;

export type XenctrlOpenFailure = 'platform' | 'library' | 'interface' | 'version';

/**
 * xenballoond cannot use libxenctrl here. A UserError: the CLI prints the message as one line.
 * `failure` says which step failed, `errnoCode` (e.g. "ENOENT") the system's reason if any.
 */
export class XenctrlOpenError extends UserError {
  constructor(
    readonly failure: XenctrlOpenFailure,
    message: string,
    readonly errnoCode: string | null = null,
  ) {
    super(message, 1);
    this.name = 'XenctrlOpenError';
  }
}

/** A libxenctrl call failed. `code` is the errno name: ESRCH means the domain is gone. */
export class XenctrlCallError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
    readonly code: string,
    detail: string,
  ) {
    super(`${call} failed: ${detail}`);
    this.name = 'XenctrlCallError';
  }
}

function describeErrno(errno: number): { code: string; text: string } {
  const known = getSystemErrorMap().get(-errno);
  if (!known) return { code: `errno ${errno}`, text: `errno ${errno}` };
  return { code: known[0], text: `${known[1]} (${known[0]})` };
}

/** A bound native function (koffi does not export the type by name). */
type NativeFn = ReturnType<LibraryHandle['func']>;

interface Natives {
  open: NativeFn;
  close: NativeFn;
  version: NativeFn;
  physinfo: NativeFn;
  getinfolist: NativeFn;
  setmaxmem: NativeFn;
  createLogger: NativeFn;
  destroyLogger: NativeFn;
  fopen: NativeFn;
  fclose: NativeFn;
}

const nativesByLibrary = new Map<string, Natives>();

function loadNatives(library: string): Natives {
  const cached = nativesByLibrary.get(library);
  if (cached) return cached;
  const xc = koffi.load(library);
  const xtl = koffi.load('libxentoollog.so.1');
  const libc = koffi.load('libc.so.6');
  const natives: Natives = {
    open: xc.func('void *xc_interface_open(void *logger, void *dombuild_logger, unsigned int open_flags)'),
    close: xc.func('int xc_interface_close(void *xch)'),
    version: xc.func('int xc_version(void *xch, int cmd, void *arg)'),
    physinfo: xc.func('int xc_physinfo(void *xch, void *info)'),
    getinfolist: xc.func(
      'int xc_domain_getinfolist(void *xch, uint32_t first_domain, unsigned int max_domains, void *info)',
    ),
    setmaxmem: xc.func('int xc_domain_setmaxmem(void *xch, uint32_t domid, uint64_t max_memkb)'),
    createLogger: xtl.func('void *xtl_createlogger_stdiostream(void *f, int min_level, unsigned int flags)'),
    destroyLogger: xtl.func('void xtl_logger_destroy(void *logger)'),
    fopen: libc.func('void *fopen(const char *path, const char *mode)'),
    fclose: libc.func('int fclose(void *f)'),
  };
  nativesByLibrary.set(library, natives);
  return natives;
}

/**
 * The struct layouts for the release xc_version(XENVER_version) reported, or the one-line
 * refusal for a release (or CPU architecture) whose layouts were never verified.
 */
export function layoutForVersion(xenVersion: number, arch: string = process.arch): XenctrlLayout {
  const release = releaseFromVersion(xenVersion);
  const layout = layoutFor(release, arch);
  if (!layout) {
    throw new XenctrlOpenError(
      'version',
      `unsupported Xen ${release} on ${arch}: xenballoond reads libxenctrl structs whose layout it has verified for Xen ${supportedReleases().join(', ')} on x64 only`,
    );
  }
  return layout;
}

/** Call a native function on a worker thread; errno is only valid inside koffi's callback. */
function callAsync<T>(fn: NativeFn, ...args: unknown[]): Promise<{ ret: T; errno: number }> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (err: unknown, ret: T) => {
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve({ ret, errno: koffi.errno() });
    });
  });
}

export interface XenctrlOpenOptions {
  /** The libxenctrl to load; default: the soname of each release xenballoond supports. */
  library?: string;
}

export class XenctrlHypervisor implements Hypervisor {
  /** Calls are chained: one in flight on the handle at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly natives: Natives,
    private readonly xch: unknown,
    private readonly logger: unknown,
    private readonly nullFile: unknown,
    private readonly layout: XenctrlLayout,
    /** "major.minor", e.g. "4.17". */
    readonly version: string,
    /** With the extra version, e.g. "4.17.7". */
    readonly fullVersion: string,
  ) {}

  /**
   * Open libxenctrl and check the hypervisor's release. Throws XenctrlOpenError (a UserError)
   * when the library is missing, the hypervisor interface cannot be opened (not Xen, not root)
   * or the release is one whose struct layouts xenballoond has not verified.
   */
  static async open(options: XenctrlOpenOptions = {}): Promise<XenctrlHypervisor> {
    if (process.platform !== 'linux' || process.arch !== 'x64') {
      throw new XenctrlOpenError(
        'platform',
        `cannot open libxenctrl: xenballoond knows libxenctrl's struct layouts on linux/x64 only, not ${process.platform}/${process.arch}`,
      );
    }
    const candidates = options.library
      ? [options.library]
      : supportedReleases().map((r) => XENCTRL_LAYOUTS[r]!.library);
    let natives: Natives | null = null;
    const loadErrors: string[] = [];
    for (const library of candidates) {
      try {
        natives = loadNatives(library);
        break;
      } catch (err) {
        loadErrors.push(`${library}: ${(err as Error).message}`);
      }
    }
    if (!natives) {
      throw new XenctrlOpenError(
        'library',
        `cannot open libxenctrl: ${candidates.join(' or ')} not found (Xen ${supportedReleases().join('/')} tools not installed?) — ${OPEN_HINT}`,
      );
    }

    // The library's own logger would print to stderr; errors reach the user through our
    // exceptions instead, so give it one that never writes.
    const nullFile = natives.fopen('/dev/null', 'w');
    const logger = nullFile ? natives.createLogger(nullFile, XTL_SILENT, 0) : null;
    const opened = await callAsync<unknown>(natives.open, logger, logger, 0);
    if (!opened.ret) {
      if (logger) natives.destroyLogger(logger);
      if (nullFile) natives.fclose(nullFile);
      const e = describeErrno(opened.errno);
      throw new XenctrlOpenError(
        'interface',
        `cannot open libxenctrl: no hypervisor interface at /dev/xen/privcmd: ${e.text} — ${OPEN_HINT}`,
        e.code,
      );
    }
    const xch = opened.ret;
    const fail = async (err: XenctrlOpenError): Promise<never> => {
      await callAsync(natives.close, xch);
      if (logger) natives.destroyLogger(logger);
      if (nullFile) natives.fclose(nullFile);
      throw err;
    };

    const v = await callAsync<number>(natives.version, xch, XENVER_VERSION, null);
    if (v.ret < 0) {
      const e = describeErrno(v.errno);
      return fail(new XenctrlOpenError('interface', `cannot open libxenctrl: xc_version failed: ${e.text} — ${OPEN_HINT}`, e.code));
    }
    let layout: XenctrlLayout;
    try {
      layout = layoutForVersion(v.ret);
    } catch (err) {
      return fail(err as XenctrlOpenError);
    }
    const release = releaseFromVersion(v.ret);
    const extra = Buffer.alloc(XEN_EXTRAVERSION_LEN);
    const ev = await callAsync<number>(natives.version, xch, XENVER_EXTRAVERSION, extra);
    const nul = extra.indexOf(0);
    const extraText = ev.ret < 0 ? '' : extra.toString('latin1', 0, nul < 0 ? extra.length : nul);
    return new XenctrlHypervisor(natives, xch, logger, nullFile, layout, release, `${release}${extraText}`);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('libxenctrl handle is closed'));
    const next = this.queue.then(fn);
    // The chain only orders calls; each caller sees its own outcome.
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async call(name: string, context: string, fn: NativeFn, ...args: unknown[]): Promise<number> {
    const { ret, errno } = await callAsync<number>(fn, this.xch, ...args);
    if (ret < 0) {
      const e = describeErrno(errno);
      throw new XenctrlCallError(name, errno, e.code, `${context}${e.text}`);
    }
    return ret;
  }

  physinfo(): Promise<PhysInfo> {
    return this.serial(async () => {
      const buf = Buffer.alloc(this.layout.physinfo.size);
      await this.call('xc_physinfo', '', this.natives.physinfo, buf);
      return decodePhysinfo(buf, this.layout);
    });
  }

  domains(): Promise<DomainInfo[]> {
    return this.serial(() =>
      listAllDomains(async (first, max) => {
        const buf = Buffer.alloc(this.layout.domaininfo.size * max);
        const n = await this.call('xc_domain_getinfolist', `from domid ${first}: `, this.natives.getinfolist, first, max, buf);
        const out: DomainInfo[] = [];
        for (let i = 0; i < Math.min(n, max); i++) out.push(decodeDomaininfo(buf, i, this.layout));
        return out;
      }, DOMAIN_BATCH),
    );
  }

  setMaxmem(domid: number, kib: number): Promise<void> {
    if (!Number.isInteger(domid) || domid < 0 || domid >= DOMID_FIRST_RESERVED) {
      return Promise.reject(new RangeError(`setMaxmem: invalid domid ${domid}`));
    }
    if (!Number.isSafeInteger(kib) || kib <= 0) {
      return Promise.reject(new RangeError(`setMaxmem: invalid size ${kib} KiB`));
    }
    return this.serial(async () => {
      await this.call('xc_domain_setmaxmem', `domid ${domid}, ${kib} KiB: `, this.natives.setmaxmem, domid, kib);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const last = this.queue;
    this.closed = true;
    await last;
    await callAsync(this.natives.close, this.xch);
    if (this.logger) this.natives.destroyLogger(this.logger);
    if (this.nullFile) this.natives.fclose(this.nullFile);
  }
}
