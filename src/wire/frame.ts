/**
 * `xsd_sockmsg` frames: encoding, and an incremental decoder that accepts bytes in any split
 * (one frame over many reads, many frames in one read) and enforces the payload limit. Knows
 * bytes, never sockets: the caller feeds what it read and gets whole frames back.
 */
import { XS_HEADER_SIZE, XS_PAYLOAD_MAX } from './protocol.js';

export interface Frame {
  /** Message type (XsType); any uint32 may arrive from a peer, so this is a plain number. */
  type: number;
  reqId: number;
  txId: number;
  payload: Buffer;
}

export type WireProtocolErrorCode = 'payload-too-large';

/** A peer broke the framing rules; the byte stream cannot be resynchronised after this. */
export class WireProtocolError extends Error {
  constructor(
    readonly code: WireProtocolErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WireProtocolError';
  }
}

/** One frame as bytes. Throws WireProtocolError if the payload exceeds the protocol's limit. */
export function encodeFrame(frame: Frame, maxPayload = XS_PAYLOAD_MAX): Buffer {
  const len = frame.payload.length;
  if (len > maxPayload) {
    throw new WireProtocolError('payload-too-large', `payload of ${len} bytes exceeds the limit of ${maxPayload}`);
  }
  const out = Buffer.allocUnsafe(XS_HEADER_SIZE + len);
  out.writeUInt32LE(frame.type >>> 0, 0);
  out.writeUInt32LE(frame.reqId >>> 0, 4);
  out.writeUInt32LE(frame.txId >>> 0, 8);
  out.writeUInt32LE(len, 12);
  frame.payload.copy(out, XS_HEADER_SIZE);
  return out;
}

/**
 * Incremental decoder. `push()` returns every frame completed by the new bytes, in order.
 * A header announcing more than `maxPayload` bytes is a protocol error (xenstored drops such a
 * connection): `push()` throws WireProtocolError, and so does every later call, because the
 * stream has lost its framing.
 */
export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0);
  private failure: WireProtocolError | undefined;

  constructor(private readonly maxPayload = XS_PAYLOAD_MAX) {}

  /** Bytes received but not yet part of a complete frame. */
  get bufferedBytes(): number {
    return this.pending.length;
  }

  push(chunk: Uint8Array): Frame[] {
    if (this.failure) throw this.failure;
    let buf: Buffer;
    if (this.pending.length === 0) {
      buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    } else {
      // The remainder is at most one header plus one payload, so this copy stays small.
      buf = Buffer.concat([this.pending, chunk]);
    }
    const frames: Frame[] = [];
    let off = 0;
    while (buf.length - off >= XS_HEADER_SIZE) {
      const len = buf.readUInt32LE(off + 12);
      if (len > this.maxPayload) {
        this.failure = new WireProtocolError(
          'payload-too-large',
          `peer announced a ${len}-byte payload; the limit is ${this.maxPayload}`,
        );
        this.pending = Buffer.alloc(0);
        throw this.failure;
      }
      if (buf.length - off < XS_HEADER_SIZE + len) break;
      const start = off + XS_HEADER_SIZE;
      frames.push({
        type: buf.readUInt32LE(off),
        reqId: buf.readUInt32LE(off + 4),
        txId: buf.readUInt32LE(off + 8),
        // Copied so a frame never pins the (possibly large) read buffer it arrived in.
        payload: Buffer.from(buf.subarray(start, start + len)),
      });
      off = start + len;
    }
    this.pending = off === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(off));
    return frames;
  }
}
