/**
 * A memory controller as the simulator drives it: xenballoond's core and every peer we compare
 * against (static, selfballoon, squeezed, qmemman, mom, proxmox) implement this, so the harness
 * runs them all on the same host, guests and workloads, in virtual time.
 *
 * The harness calls `step` every `intervalMs` of simulated time with a fresh Observation and
 * applies the returned Actions in order (setMaxmem caps populate; setTarget is what the guest's
 * balloon driver follows). Launching a guest goes through `requestLaunch` / `launchStatus` /
 * `launched`, which each peer implements the way its system admits a new VM (xenballoond's
 * reservation API, squeezed's reserve_memory, qmemman's request socket, or simply "is there
 * enough free memory" for systems without one).
 *
 * Contract shared by src/sim (harness), src/sim/peers and the xenballoond adapter. Extend
 * freely; do not rename.
 */
import type { Action, Observation } from '../core/types.js';

export type PolicyName = 'xenballoond' | 'static' | 'selfballoon' | 'selfballoon-kernel' | 'squeezed' | 'qmemman' | 'mom' | 'proxmox';

export type LaunchStatus =
  /** Not yet: the controller is freeing memory (or waiting for it); ask again later. */
  | { state: 'wait' }
  /** Create the domain now; its memory is set aside for it. */
  | { state: 'go' }
  /** Will not fit now; the launcher withdraws the request and asks again later (harness/launcher.ts). */
  | { state: 'fail'; reason: string };

export interface LaunchRequest {
  /** Memory the new domain starts with (xl's memory=), KiB. */
  memoryKib: number;
  /** Its maxmem / static-max, KiB. */
  maxmemKib: number;
  name: string;
  /** vCPUs, where a system sizes its request by them (qmemman adds 1.5 MiB each); default per peer. */
  vcpus?: number;
}

export interface Controller {
  readonly name: PolicyName;
  /** How often the harness calls step, in simulated ms (each system's own loop period). */
  readonly intervalMs: number;
  step(obs: Observation, nowMs: number): Action[];
  requestLaunch(req: LaunchRequest, obs: Observation, nowMs: number): string;
  launchStatus(id: string, obs: Observation, nowMs: number): LaunchStatus;
  /** The domain was created (or creation failed: domid null); drop the request's hold. */
  launched(id: string, domid: number | null, nowMs: number): void;
}
