/**
 * A client on a unix socket. Bytes go through the frame decoder into the core; replies and
 * events wait in a bounded queue and are handed to the socket only while its buffer is small, so
 * that a client that stops reading is noticed:
 * - its requests stop being read once enough replies wait (xenstored's outstanding-request
 *   quota), which bounds what a request flood can queue;
 * - identical events still waiting are merged (as xenstored 4.17 does), and past a byte limit a
 *   guest's further events are dropped, a privileged client is disconnected.
 * A framing error (oversized length) closes the connection; nothing a client sends can throw
 * out of here.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { encodeFrame, FrameDecoder, WireProtocolError, XsType, type Frame } from '../../wire/index.js';
import { Connection, type XenstoreCore } from './core.js';

/** Bytes we let the socket itself buffer before keeping output in our own queue. */
const SOCKET_BUFFER_TARGET = 64 * 1024;

interface Outgoing {
  buf: Buffer;
  isEvent: boolean;
  key: string | undefined;
}

export class SocketConnection extends Connection {
  private readonly decoder = new FrameDecoder();
  private inbox: Frame[] = [];
  private inboxHead = 0;
  private out: Outgoing[] = [];
  private outHead = 0;
  private queuedReplies = 0;
  private queuedEventBytes = 0;
  private readonly waitingEvents = new Map<string, number>();
  private flushScheduled = false;
  private pumping = false;
  private peerEnded = false;
  private warnedDrop = false;
  /** Events not delivered because the client did not read them (guests only). */
  droppedEvents = 0;

  constructor(
    private readonly core: XenstoreCore,
    private readonly socket: Socket,
    domid: number,
    private readonly log: Logger,
  ) {
    super(domid, domid === 0);
    core.attach(this);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.peerEnded = true;
      this.pump();
    });
    socket.on('drain', () => this.pump());
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'client socket error'));
    socket.on('close', () => this.core.detach(this));
  }

  deliverReply(type: number, reqId: number, txId: number, payload: Buffer): void {
    this.enqueue({ buf: encodeFrame({ type, reqId, txId, payload }), isEvent: false, key: undefined });
    this.queuedReplies++;
  }

  deliverEvent(payload: Buffer, coalesceKey: string | undefined): void {
    if (this.closed) return;
    if (coalesceKey !== undefined && this.waitingEvents.has(coalesceKey)) return;
    const buf = encodeFrame({ type: XsType.WATCH_EVENT, reqId: 0, txId: 0, payload });
    if (this.queuedEventBytes + buf.length > this.core.limits.maxQueuedEventBytes) {
      if (this.privileged) {
        this.log.warn({ queuedBytes: this.queuedEventBytes }, 'closing a client that does not read its watch events');
        this.core.drop(this, 'watch events not read');
      } else {
        this.droppedEvents++;
        if (!this.warnedDrop) {
          this.warnedDrop = true;
          this.log.warn({ domid: this.domid }, 'dropping watch events for a guest that does not read them');
        }
      }
      return;
    }
    this.queuedEventBytes += buf.length;
    if (coalesceKey !== undefined) this.waitingEvents.set(coalesceKey, (this.waitingEvents.get(coalesceKey) ?? 0) + 1);
    this.enqueue({ buf, isEvent: true, key: coalesceKey });
  }

  protected onDropped(reason: string): void {
    this.log.debug({ domid: this.domid, reason }, 'connection dropped');
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      if (!(err instanceof WireProtocolError)) throw err;
      this.log.warn({ domid: this.domid, reason: err.message }, 'closing a client that broke the framing');
      this.core.drop(this, err.message);
      return;
    }
    for (const f of frames) this.inbox.push(f);
    this.pump();
  }

  private throttled(): boolean {
    const limit = this.privileged ? this.core.limits.privilegedOutstandingRequests : this.core.limits.outstandingRequests;
    return this.queuedReplies >= limit;
  }

  /** Handles queued requests while the client keeps up with the replies, then writes. */
  override resumed(): void {
    this.pump();
  }

  private pump(): void {
    if (this.core.stalled) {
      // Hung: nothing read, nothing answered, nothing delivered until it resumes.
      if (!this.socket.isPaused()) this.socket.pause();
      return;
    }
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.closed && this.inboxHead < this.inbox.length) {
        if (this.throttled()) {
          this.flush();
          if (this.throttled()) break;
        }
        this.core.handle(this, this.inbox[this.inboxHead++]!);
      }
      if (this.inboxHead === this.inbox.length) {
        this.inbox = [];
        this.inboxHead = 0;
      }
      this.flush();
      if (this.closed) return;
      const backlog = this.inboxHead < this.inbox.length;
      if (backlog && !this.socket.isPaused()) this.socket.pause();
      else if (!backlog && this.socket.isPaused()) this.socket.resume();
      if (this.peerEnded && !backlog && this.outHead === this.out.length) this.socket.end();
    } finally {
      this.pumping = false;
    }
  }

  private enqueue(item: Outgoing): void {
    if (this.closed) return;
    this.out.push(item);
    if (!this.flushScheduled && !this.pumping) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.pump();
      });
    }
  }

  /**
   * Hands queued output to the socket while its own buffer is below the target. A write the
   * kernel takes at once leaves room for more; one that backs up ends the loop until 'drain'.
   */
  private flush(): void {
    while (!this.closed && !this.socket.destroyed && this.outHead < this.out.length) {
      let budget = SOCKET_BUFFER_TARGET - this.socket.writableLength;
      if (budget <= 0) break;
      const batch: Buffer[] = [];
      while (this.outHead < this.out.length && budget > 0) {
        const item = this.out[this.outHead++]!;
        batch.push(item.buf);
        budget -= item.buf.length;
        if (item.isEvent) {
          this.queuedEventBytes -= item.buf.length;
          if (item.key !== undefined) {
            const n = this.waitingEvents.get(item.key)! - 1;
            if (n === 0) this.waitingEvents.delete(item.key);
            else this.waitingEvents.set(item.key, n);
          }
        } else {
          this.queuedReplies--;
        }
      }
      const more = this.socket.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch));
      if (!more) break;
    }
    if (this.outHead === this.out.length) {
      this.out = [];
      this.outHead = 0;
    } else if (this.outHead > 1024 && this.outHead * 2 > this.out.length) {
      this.out = this.out.slice(this.outHead);
      this.outHead = 0;
    }
  }
}
