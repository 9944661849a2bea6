// Channel numbers 1..65534, drawn at random; a released number waits in quarantine
// (the last 1024 released) before it is drawn again, so a late post to a closed
// channel is refused instead of reaching a newer channel.

const FIRST = 1;
const LAST = 65534;

export class ChannelNumbers {
  #used = new Set<number>();
  #quarantine: number[] = [];
  #quarantineHead = 0;
  #inQuarantine = new Set<number>();
  readonly limit: number;
  readonly #quarantineSize: number;

  constructor(limit = LAST, quarantineSize = 1024) {
    if (!Number.isInteger(limit) || limit < 1 || limit > LAST) {
      throw new RangeError(`Cannot create engine: maxChannels ${limit} is not 1..${LAST}`);
    }
    this.limit = limit;
    this.#quarantineSize = quarantineSize;
  }

  get count(): number {
    return this.#used.size;
  }

  #free(n: number): boolean {
    return !this.#used.has(n) && !this.#inQuarantine.has(n);
  }

  /** A free number, or null when `limit` channels are open. */
  allocate(): number | null {
    if (this.#used.size >= this.limit) return null;
    let n = 0;
    for (let i = 0; i < 16 && n === 0; i++) {
      const c = FIRST + Math.floor(Math.random() * (LAST - FIRST + 1));
      if (this.#free(c)) n = c;
    }
    if (n === 0) {
      const start = FIRST + Math.floor(Math.random() * (LAST - FIRST + 1));
      for (let i = 0; i <= LAST - FIRST && n === 0; i++) {
        const c = FIRST + ((start - FIRST + i) % (LAST - FIRST + 1));
        if (this.#free(c)) n = c;
      }
    }
    if (n === 0) {
      // Every unused number is in quarantine: reuse the one released longest ago.
      while (n === 0 && this.#quarantineHead < this.#quarantine.length) {
        const c = this.#quarantine[this.#quarantineHead++]!;
        this.#inQuarantine.delete(c);
        if (!this.#used.has(c)) n = c;
      }
      if (n === 0) return null;
    }
    this.#used.add(n);
    return n;
  }

  release(n: number): void {
    if (!this.#used.delete(n)) return;
    this.#quarantine.push(n);
    this.#inQuarantine.add(n);
    while (this.#quarantine.length - this.#quarantineHead > this.#quarantineSize) {
      this.#inQuarantine.delete(this.#quarantine[this.#quarantineHead++]!);
    }
    if (this.#quarantineHead > 4096) {
      this.#quarantine = this.#quarantine.slice(this.#quarantineHead);
      this.#quarantineHead = 0;
    }
  }
}
