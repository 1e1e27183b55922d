/** A source of the current time; every time-dependent function takes one so tests can move time. */
export interface Clock {
  now(): Date;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => new Date() };

/** A clock that stands still until told to move: for tests and what-if evaluation. */
export class ManualClock implements Clock {
  #ms: number;
  constructor(start: Date | string | number = Date.now()) {
    this.#ms = new Date(start).getTime();
  }
  now(): Date {
    return new Date(this.#ms);
  }
  advance(seconds: number): void {
    this.#ms += seconds * 1000;
  }
  set(to: Date | string | number): void {
    this.#ms = new Date(to).getTime();
  }
}

/** Seconds since the epoch, as JWT claims count time. */
export function epochSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}
