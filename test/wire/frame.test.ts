import { existsSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  countNuls,
  decodeStrings,
  encodeFrame,
  encodePathValue,
  encodeStrings,
  FrameDecoder,
  onlyArg,
  splitPathValue,
  WireProtocolError,
  XS_ERROR_NAMES,
  XS_HEADER_SIZE,
  XS_PAYLOAD_MAX,
  XsType,
  xsTypeName,
  type Frame,
} from '../../src/wire/index.js';

const frameArb: fc.Arbitrary<Frame> = fc.record({
  type: fc.nat({ max: 0xffffffff }),
  reqId: fc.nat({ max: 0xffffffff }),
  txId: fc.nat({ max: 0xffffffff }),
  payload: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
});

/** Splits `bytes` at the given cut points (any order, duplicates allowed). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

describe('encodeFrame', () => {
  it('writes the four header fields little-endian, then the payload', () => {
    const buf = encodeFrame({ type: XsType.WRITE, reqId: 0x01020304, txId: 7, payload: Buffer.from('a\0b') });
    expect(buf.length).toBe(XS_HEADER_SIZE + 3);
    expect([...buf.subarray(0, 16)]).toEqual([11, 0, 0, 0, 4, 3, 2, 1, 7, 0, 0, 0, 3, 0, 0, 0]);
    expect(buf.subarray(16).toString('latin1')).toBe('a\0b');
  });

  it('accepts exactly the payload limit and refuses one byte more', () => {
    expect(encodeFrame({ type: 2, reqId: 0, txId: 0, payload: Buffer.alloc(XS_PAYLOAD_MAX) }).length).toBe(16 + 4096);
    expect(() => encodeFrame({ type: 2, reqId: 0, txId: 0, payload: Buffer.alloc(XS_PAYLOAD_MAX + 1) })).toThrow(WireProtocolError);
  });
});

describe('FrameDecoder', () => {
  it('decodes frames split across pushes and frames merged in one push', () => {
    const a = encodeFrame({ type: 2, reqId: 1, txId: 0, payload: Buffer.from('/x\0') });
    const b = encodeFrame({ type: 11, reqId: 2, txId: 3, payload: Buffer.from('/y\0v') });
    const d = new FrameDecoder();
    expect(d.push(a.subarray(0, 5))).toEqual([]);
    expect(d.bufferedBytes).toBe(5);
    const both = Buffer.concat([a.subarray(5), b]);
    const frames = d.push(both);
    expect(frames.map((f) => [f.type, f.reqId, f.txId, f.payload.toString('latin1')])).toEqual([
      [2, 1, 0, '/x\0'],
      [11, 2, 3, '/y\0v'],
    ]);
    expect(d.bufferedBytes).toBe(0);
  });

  it('any split of a valid byte stream yields the same frames', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 40 }), (frames, cuts) => {
        const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
        const d = new FrameDecoder();
        const got: Frame[] = [];
        for (const chunk of split(stream, cuts)) got.push(...d.push(chunk));
        expect(got).toEqual(frames);
        expect(d.bufferedBytes).toBe(0);
      }),
    );
  });

  it('accepts a 4096-byte payload and rejects a larger length as a protocol error, for good', () => {
    const d = new FrameDecoder();
    expect(d.push(encodeFrame({ type: 11, reqId: 1, txId: 0, payload: Buffer.alloc(4096, 1) }))).toHaveLength(1);
    const bad = Buffer.alloc(16);
    bad.writeUInt32LE(4097, 12);
    expect(() => d.push(bad)).toThrow(WireProtocolError);
    // The stream has lost its framing: even valid bytes are refused now.
    expect(() => d.push(encodeFrame({ type: 2, reqId: 1, txId: 0, payload: Buffer.from('/\0') }))).toThrow(WireProtocolError);
  });

  it('never throws anything but WireProtocolError on garbage, and never yields an oversized frame', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 30 }), (chunks) => {
        const d = new FrameDecoder();
        try {
          for (const c of chunks) {
            for (const f of d.push(c)) expect(f.payload.length).toBeLessThanOrEqual(XS_PAYLOAD_MAX);
          }
        } catch (err) {
          expect(err).toBeInstanceOf(WireProtocolError);
        }
      }),
    );
  });
});

describe('payload helpers', () => {
  it('onlyArg wants exactly one string and its NUL', () => {
    expect(onlyArg(Buffer.from('/a\0'))).toBe('/a');
    expect(onlyArg(Buffer.from('\0'))).toBe('');
    expect(onlyArg(Buffer.from('/a'))).toBeUndefined();
    expect(onlyArg(Buffer.from('/a\0b'))).toBeUndefined();
    expect(onlyArg(Buffer.from('/a\0b\0'))).toBeUndefined();
    expect(onlyArg(Buffer.alloc(0))).toBeUndefined();
  });

  it('decodeStrings returns NUL-terminated strings and ignores an unterminated tail', () => {
    expect(decodeStrings(Buffer.from('a\0bc\0\0tail'))).toEqual(['a', 'bc', '']);
    expect(countNuls(Buffer.from('a\0bc\0\0tail'))).toBe(3);
    expect(decodeStrings(encodeStrings(['x', 'y z', '']))).toEqual(['x', 'y z', '']);
  });

  it('WRITE payloads keep binary values, NULs included', () => {
    const value = Buffer.from([0, 1, 255, 0, 10]);
    const p = encodePathValue('/k', value);
    const parsed = splitPathValue(p)!;
    expect(parsed.path).toBe('/k');
    expect(Buffer.compare(parsed.value, value)).toBe(0);
    expect(splitPathValue(Buffer.from('no-nul'))).toBeUndefined();
  });

  it('latin1 strings round-trip any byte', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 50 }), (bytes) => {
        const s = Buffer.from(bytes.filter((b) => b !== 0)).toString('latin1');
        expect(decodeStrings(encodeStrings([s]))).toEqual([s]);
      }),
    );
  });
});

// The tables must match Xen's own header (installed by libxen-dev, which make setup installs).
const XS_WIRE_H = '/usr/include/xen/io/xs_wire.h';

describe.runIf(existsSync(XS_WIRE_H))('protocol tables match xs_wire.h', () => {
  const header = readFileSync(XS_WIRE_H, 'utf8');

  it('has the error names in the same order', () => {
    const names = [...header.matchAll(/XSD_ERROR\((E[A-Z0-9]+)\)/g)].map((m) => m[1]);
    expect(names).toEqual([...XS_ERROR_NAMES]);
  });

  it('numbers the message types as the enum does', () => {
    const body = /enum xsd_sockmsg_type\s*\{([\s\S]*?)\};/.exec(header)![1]!;
    let next = 0;
    const values = new Map<string, number>();
    for (const raw of body.split('\n')) {
      const line = raw.replace(/\/\*.*?\*\//g, '').trim();
      const m = /^XS_([A-Z_]+)\s*(?:=\s*([^,]+))?,?$/.exec(line);
      if (!m) continue;
      if (m[2]) {
        const expr = m[2].trim();
        const ref = /^XS_([A-Z_]+)\s*\+\s*(\d+)$/.exec(expr);
        next = ref ? values.get(ref[1]!)! + Number(ref[2]) : Number(expr);
      }
      values.set(m[1]!, next++);
    }
    for (const [name, code] of Object.entries(XsType)) {
      expect(values.get(name), name).toBe(code);
      expect(xsTypeName(code)).toBe(name);
    }
    expect(xsTypeName(20)).toBeUndefined();
    expect(xsTypeName(values.get('TYPE_COUNT')!)).toBeUndefined();
  });
});
