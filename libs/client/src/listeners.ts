/** Listeners by event name: what `on()` and `onEvent()` keep. A listener that throws is reported through `failed`, and the others still run. */
export class Listeners<E extends { [K in keyof E]: (...args: never[]) => void }> {
  private readonly map = new Map<keyof E, Set<E[keyof E]>>();

  constructor(private readonly failed: (err: unknown) => void) {}

  /** Adds a listener; returns the function that removes it. */
  add<K extends keyof E>(event: K, listener: E[K]): () => void {
    let set = this.map.get(event);
    if (set === undefined) this.map.set(event, (set = new Set()));
    set.add(listener);
    return () => void set.delete(listener);
  }

  /** Calls each listener of `event`; the errors they threw, if any. */
  emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): unknown[] {
    const errors: unknown[] = [];
    for (const listener of [...(this.map.get(event) ?? [])]) {
      try {
        (listener as (...a: Parameters<E[K]>) => void)(...args);
      } catch (err) {
        errors.push(err);
        this.failed(err);
      }
    }
    return errors;
  }
}
