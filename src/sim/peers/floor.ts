/**
 * The guarantee the protocol gives the peers that have an administrator-set floor (squeezed's
 * dynamic-min, MOM's balloon_min, Proxmox's `balloon`), one for all of them so that they are
 * compared at the same setting (docs/peers.md, "The protocol"). Default: static-max / 4, the
 * lowest dynamic-min XenServer supports ("dynamic-min >= static-max / 4", XenServer's DMC
 * documentation; xen-api enforces it in its memory constraints check). `simulate --peer-floor`
 * sweeps it: a size (`128M`) or a share of static-max (`25%`).
 */
import { parseSizeKib } from '../units.js';
import type { GuestConfig } from './common.js';

export type PeerFloor = { kind: 'size'; kib: number } | { kind: 'share'; of: number };

export const DEFAULT_PEER_FLOOR: PeerFloor = { kind: 'share', of: 0.25 };

/** The floor for one guest, KiB, never above its maxmem=. */
export function peerFloorKib(floor: PeerFloor, cfg: GuestConfig): number {
  const kib = floor.kind === 'size' ? floor.kib : Math.ceil(cfg.maxmemKib * floor.of);
  return Math.min(cfg.maxmemKib, Math.max(0, kib));
}

/** `128M`, `1G`, `25%`; throws an Error with a one-line message otherwise. */
export function parsePeerFloor(text: string): PeerFloor {
  const pct = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(text);
  if (pct) {
    const of = Number(pct[1]) / 100;
    if (!(of > 0 && of <= 1)) throw new Error(`--peer-floor ${text}: a share must be above 0 % and at most 100 %`);
    return { kind: 'share', of };
  }
  let kib: number;
  try {
    kib = parseSizeKib(text);
  } catch {
    throw new Error(`--peer-floor takes a size (128M) or a share of static-max (25%), not '${text}'`);
  }
  if (!(kib > 0)) throw new Error(`--peer-floor ${text}: the floor must be above 0`);
  return { kind: 'size', kib };
}

export function formatPeerFloor(f: PeerFloor): string {
  return f.kind === 'share' ? `${Math.round(f.of * 1000) / 10}% of static-max` : `${Math.round(f.kib / 1024)}M`;
}
