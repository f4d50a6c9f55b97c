/** An idle guest: nothing beyond the operating system's own memory (the guest model's `os`). */
import { type Demand, NO_DEMAND, type Workload } from './types.js';

export class Idle implements Workload {
  readonly kind = 'idle';
  demand(): Demand {
    return NO_DEMAND;
  }
  advance(): void {}
  kill(): void {}
}
