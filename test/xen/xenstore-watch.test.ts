/** The Watch object's delivery rules, without a server. */
import { describe, expect, it } from 'vitest';
import { Watch, type WatchEvent } from '../../src/xen/xenstore-watch.js';

function makeWatch(limit = 100): { w: Watch; removed: Watch[] } {
  const removed: Watch[] = [];
  const w: Watch = new Watch('/p', 'tok', async (x) => {
    removed.push(x);
    x.end();
  }, limit);
  return { w, removed };
}

const ev = (path: string): WatchEvent => ({ path, token: 'tok' });

describe('Watch', () => {
  it('holds events that arrive before a consumer and gives them to the first listener, in order', async () => {
    const { w } = makeWatch();
    w.deliver(ev('/p'));
    w.deliver(ev('/p/a'));
    const got: string[] = [];
    w.on('event', (e: WatchEvent) => got.push(e.path));
    w.deliver(ev('/p/b')); // arrives while the held ones are still being handed over
    await Promise.resolve();
    w.deliver(ev('/p/c'));
    expect(got).toEqual(['/p', '/p/a', '/p/b', '/p/c']);
  });

  it('gives held events to the iterator, then live ones, and ends when unwatched', async () => {
    const { w, removed } = makeWatch();
    w.deliver(ev('/p'));
    const it = w[Symbol.asyncIterator]();
    expect((await it.next()).value?.path).toBe('/p');
    const pending = it.next();
    w.deliver(ev('/p/x'));
    expect((await pending).value?.path).toBe('/p/x');
    const last = it.next();
    await w.unwatch();
    expect((await last).done).toBe(true);
    expect(removed).toEqual([w]);
    expect(w.active).toBe(false);
  });

  it('unwatches when the consumer leaves a for-await loop', async () => {
    const { w, removed } = makeWatch();
    w.deliver(ev('/p'));
    for await (const e of w) {
      expect(e.path).toBe('/p');
      break;
    }
    expect(removed).toEqual([w]);
  });

  it('collapses events past the queue limit into one overflow event', async () => {
    const { w } = makeWatch(3);
    for (let i = 0; i < 10; i++) w.deliver(ev(`/p/${i}`));
    const it = w[Symbol.asyncIterator]();
    const got: WatchEvent[] = [];
    for (let i = 0; i < 4; i++) got.push((await it.next()).value as WatchEvent);
    expect(got.map((e) => e.path)).toEqual(['/p/0', '/p/1', '/p/2', '/p']);
    expect(got[3]?.overflow).toBe(true);
  });

  it('allows one iterator only', () => {
    const { w } = makeWatch();
    w[Symbol.asyncIterator]();
    expect(() => w[Symbol.asyncIterator]()).toThrow(/only once/);
  });

  it('delivers nothing after it ended', () => {
    const { w } = makeWatch();
    const got: string[] = [];
    w.on('event', (e: WatchEvent) => got.push(e.path));
    w.end();
    w.deliver(ev('/p'));
    expect(got).toEqual([]);
  });
});
