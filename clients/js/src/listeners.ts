/**
 * A set of listeners for one kind of notification, called safely and in the order they were added.
 */

/** Listeners of one notification with arguments `A`. */
export class Listeners<A extends unknown[]> {
  private readonly set = new Set<(...args: A) => void>();

  /** Add a listener; returns a function that removes it. */
  add(listener: (...args: A) => void): () => void {
    this.set.add(listener);
    return () => {
      this.set.delete(listener);
    };
  }

  /** How many listeners there are. */
  get size(): number {
    return this.set.size;
  }

  /**
   * Call every listener with `args`.
   *
   * A listener that throws does not stop the others or the SDK: its error is rethrown from a
   * fresh task, where the runtime reports it as any uncaught error of game code.
   */
  emit(...args: A): void {
    // A copy: a listener may unsubscribe itself (or add another) while being called.
    for (const listener of [...this.set]) {
      try {
        listener(...args);
      } catch (exc) {
        setTimeout(() => {
          throw exc;
        }, 0);
      }
    }
  }
}
