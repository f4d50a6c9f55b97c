/**
 * A unix datagram socket bound through libc (Node has none), standing in for systemd's
 * NOTIFY_SOCKET in tests of sd_notify.
 */
import koffi from 'koffi';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const MSG_DONTWAIT = 0x40;
const libc = koffi.load('libc.so.6');
const sockaddrUn = koffi.struct('xbd_sockaddr_un', { sun_family: 'uint16', sun_path: koffi.array('char', 108) });
const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const bindFn = libc.func('int bind(int fd, const xbd_sockaddr_un *addr, uint32 len)');
const recvFn = libc.func('long recv(int fd, _Out_ uint8 *buf, size_t len, int flags)');
const closeFn = libc.func('int close(int fd)');
void sockaddrUn;

export class NotifySocket {
  private fd: number;
  readonly messages: string[] = [];

  constructor(readonly path: string) {
    this.fd = socketFn(AF_UNIX, SOCK_DGRAM, 0) as number;
    if (this.fd < 0) throw new Error('socket() failed');
    if (bindFn(this.fd, { sun_family: AF_UNIX, sun_path: path }, 2 + Buffer.byteLength(path) + 1) !== 0) {
      closeFn(this.fd);
      throw new Error(`bind(${path}) failed`);
    }
  }

  /** Everything received so far (non-blocking). */
  drain(): string[] {
    const buf = Buffer.alloc(4096);
    for (;;) {
      const n = recvFn(this.fd, buf, buf.length, MSG_DONTWAIT) as number;
      if (n <= 0) return this.messages;
      this.messages.push(buf.toString('utf8', 0, n));
    }
  }

  close(): void {
    if (this.fd >= 0) closeFn(this.fd);
    this.fd = -1;
  }
}

/** Whether libsystemd is on this machine (sd_notify is a no-op without it, by design). */
export const hasLibsystemd = (() => {
  try {
    koffi.load('libsystemd.so.0');
    return true;
  } catch {
    return false;
  }
})();
