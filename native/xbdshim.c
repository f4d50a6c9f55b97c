/*
 * libxbdshim.so: the binding's watch waiter in one native call (src/xen/xenstore-shim.ts).
 *
 * xbd_wait_events() waits (poll) for libxenstore's watch pipe or the binding's wake-up fd, then
 * dequeues the queued watch events with xs_check_watch() and, for events whose token starts with
 * `value_prefix`, reads the node that changed with xs_read() — all on the calling (libuv worker)
 * thread, so an event and its value reach Node in one thread hand-off instead of three.
 * It never reads the watch pipe itself (libxenstore does, under its own mutex).
 *
 * At most XBD_MAX_VALUE_READS values are read per call: each read is a round trip to xenstored,
 * and events must leave libxenstore's queue (which has no bound) at least as fast as a flooding
 * guest can make them. Events past that budget come without a value (-1): the consumer reads the
 * node itself, coalesced as it likes.
 *
 * Records packed into `buf`, little-endian, one after another:
 *   u32 path_len, u32 token_len, i32 value (>= 0: value length; -1: not read; < -1: -errno of
 *   the read), then path bytes, token bytes, value bytes (no NULs).
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xenstore.h>

#define XBD_WOKEN 1u /* the wake-up fd was readable */
#define XBD_MORE 2u  /* stopped because the buffer could not hold another record: call again */

/* Value reads per call (see above); a batch of honest reports is far smaller. */
#define XBD_MAX_VALUE_READS 64

/* A record's worst case: the event's path and token share one 4096-byte payload, so does a value. */
#define XBD_RECORD_MAX (12u + 4096u + 4096u)

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

/*
 * Returns the number of records written (0 on a timeout with nothing queued), or -1 with errno:
 * EINVAL when libxenstore reports the connection dead, poll's errno when poll fails.
 * `*used` gets the bytes written, `*flags` XBD_WOKEN / XBD_MORE.
 */
int xbd_wait_events(struct xs_handle *h, int watch_fd, int wake_fd, int timeout_ms, const char *value_prefix,
                    uint8_t *buf, uint32_t buf_len, uint32_t *used, uint32_t *flags) {
  struct pollfd fds[2] = {{.fd = watch_fd, .events = POLLIN}, {.fd = wake_fd, .events = POLLIN}};
  size_t prefix_len = value_prefix ? strlen(value_prefix) : 0;
  uint32_t at = 0;
  int count = 0;
  int reads = 0;
  *used = 0;
  *flags = 0;
  if (poll(fds, 2, timeout_ms) < 0 && errno != EINTR) return -1;
  if (fds[1].revents & POLLIN) *flags |= XBD_WOKEN;
  for (;;) {
    if (buf_len - at < XBD_RECORD_MAX) {
      *flags |= XBD_MORE;
      break;
    }
    char **ev = xs_check_watch(h);
    if (ev == NULL) {
      if (errno == EAGAIN) break;
      if (count > 0) break; /* deliver what we have; the next call reports the loss */
      errno = EINVAL;
      return -1;
    }
    const char *path = ev[XS_WATCH_PATH];
    const char *token = ev[XS_WATCH_TOKEN];
    uint32_t plen = (uint32_t)strlen(path), tlen = (uint32_t)strlen(token);
    int32_t vlen = -1;
    uint8_t *rec = buf + at;
    at += 12;
    memcpy(buf + at, path, plen);
    at += plen;
    memcpy(buf + at, token, tlen);
    at += tlen;
    if (prefix_len > 0 && reads < XBD_MAX_VALUE_READS && strncmp(token, value_prefix, prefix_len) == 0) {
      unsigned int len = 0;
      reads++;
      void *v = xs_read(h, XBT_NULL, path, &len);
      if (v == NULL) {
        vlen = errno > 0 ? -errno : -EIO;
      } else {
        if (len > 4096u) len = 4096u; /* cannot happen (payload limit); keeps the record bounded */
        memcpy(buf + at, v, len);
        at += len;
        vlen = (int32_t)len;
        free(v);
      }
    }
    put32(rec, plen);
    put32(rec + 4, tlen);
    put32(rec + 8, (uint32_t)vlen);
    free(ev);
    count++;
  }
  *used = at;
  return count;
}
