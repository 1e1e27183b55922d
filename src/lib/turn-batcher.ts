interface Waiting<Q, A> {
  item: Q;
  resolve: (a: A) => void;
  reject: (e: unknown) => void;
}

/**
 * Shares one call of `send` among the items asked for in the same turn of the event loop, at most
 * `max` items per call; each caller gets its own answer, in order. On the hot path this turns a round
 * trip per request into one per burst (history reads, mint writes). A failed call fails each of its
 * items, unless `retryEach` says the error may belong to one item only: then each is sent alone.
 */
export class TurnBatcher<Q, A> {
  #waiting: Array<Waiting<Q, A>> = [];

  constructor(
    private readonly send: (items: Q[]) => Promise<A[]>,
    private readonly max: number,
    private readonly retryEach: (err: unknown) => boolean = () => false,
  ) {}

  ask(item: Q): Promise<A> {
    return new Promise((resolve, reject) => {
      if (this.#waiting.push({ item, resolve, reject }) === 1) setImmediate(() => this.#flush());
    });
  }

  #flush(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (let i = 0; i < waiting.length; i += this.max) void this.#sendBatch(waiting.slice(i, i + this.max));
  }

  async #sendBatch(batch: Array<Waiting<Q, A>>): Promise<void> {
    let answers: A[];
    try {
      answers = await this.send(batch.map((w) => w.item));
    } catch (err) {
      if (batch.length > 1 && this.retryEach(err)) await Promise.all(batch.map((w) => this.send([w.item]).then((a) => w.resolve(a[0]!), w.reject)));
      else for (const w of batch) w.reject(err);
      return;
    }
    batch.forEach((w, i) => w.resolve(answers[i]!));
  }
}
