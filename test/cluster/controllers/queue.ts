// A work queue as client-go's: keys, not events, so a burst of events for
// one object becomes one sync that reads the store's current state. Keys
// added while a sync runs are processed in the next turn, after the writes
// that caused them have settled.
export type SyncFn = (key: string) => void;

export class WorkQueue {
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private scheduled = false;
  private closed = false;
  private readonly sync: SyncFn;
  private readonly onError: (key: string, err: unknown) => void;
  /** Failures per key, for back-off; cleared when a sync succeeds. */
  private readonly failures = new Map<string, number>();

  constructor(sync: SyncFn, onError: (key: string, err: unknown) => void) {
    this.sync = sync;
    this.onError = onError;
  }

  add(key: string): void {
    if (this.closed) return;
    this.dirty.add(key);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  /** Add again after a delay (for times Kubernetes itself waits on, e.g. minReadySeconds). */
  addAfter(key: string, ms: number): void {
    if (this.closed) return;
    const old = this.timers.get(key);
    if (old) clearTimeout(old);
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    this.timers.set(key, t);
  }

  private drain(): void {
    this.scheduled = false;
    if (this.closed) return;
    const keys = [...this.dirty];
    this.dirty.clear();
    for (const key of keys) {
      try {
        this.sync(key);
        this.failures.delete(key);
      } catch (err) {
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        this.onError(key, err);
        // Exponential back-off as client-go's rate limiter, capped at 5 s.
        this.addAfter(key, Math.min(5000, 10 * 2 ** n));
      }
    }
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.dirty.clear();
  }
}
