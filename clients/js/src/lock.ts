// One refresh at a time across the tabs of an origin: an exclusive Web Lock,
// waited for at most `timeoutMs`. A tab the browser froze (or that hangs)
// while holding the lock would otherwise stall every other tab forever, as
// supabase-js's lock did; after the timeout a waiter that sees the *same*
// holder as when it started waiting steals the lock. A waiter that sees a
// new holder waits again: the queue is moving.

/** The part of `navigator.locks` used here (so tests can pass their own). */
export interface Locks {
  request<T>(name: string, options: LockOptions, callback: (lock: Lock | null) => Promise<T> | T): Promise<T>;
  query(): Promise<LockManagerSnapshot>;
}

/** `isStolen()` turns true once another tab took the lock from this one (the caller must not write then). */
export type Critical<T> = (isStolen: () => boolean) => Promise<T>;

function timeoutSignal(ms: number): AbortSignal {
  return AbortSignal.timeout(Math.max(1, Math.round(ms)));
}

async function holder(locks: Locks, name: string): Promise<string | undefined> {
  try {
    const snapshot = await locks.query();
    return snapshot.held?.find((l) => l.name === name)?.clientId;
  } catch {
    return undefined;
  }
}

/**
 * Runs `critical` holding the lock `name`. `random` spreads the waiters'
 * timeouts (up to a fifth longer) so two of them rarely steal at once.
 */
export async function withLock<T>(
  locks: Locks,
  name: string,
  timeoutMs: number,
  critical: Critical<T>,
  random: () => number = Math.random,
): Promise<T> {
  let stolen = false;
  let running: Promise<T> | undefined;
  // The lock is held until `critical` settles; its failure is the caller's,
  // not the lock manager's.
  const callback = () => {
    running = critical(() => stolen);
    return running.then(
      () => undefined,
      () => undefined,
    );
  };
  // Rounds in which another waiter held the steal permit: a waiter that froze
  // holding it must not stop every other from stealing, so after two such
  // rounds the permit is taken too.
  let permitMisses = 0;
  for (;;) {
    const before = await holder(locks, name);
    try {
      await locks.request(name, { mode: "exclusive", signal: timeoutSignal(timeoutMs * (1 + random() / 5)) }, callback);
      return await (running as Promise<T>);
    } catch (error) {
      if (running) {
        // Entered, then the lock was taken from us: finish, but write nothing.
        stolen = true;
        return await running;
      }
      if (!(error instanceof DOMException) || (error.name !== "TimeoutError" && error.name !== "AbortError")) throw error;
    }
    // Only one waiter at a time may judge and steal (two that timed out
    // together would otherwise steal from each other and both refresh).
    let stealing: Promise<unknown> | undefined;
    const permitOptions: LockOptions = permitMisses >= 2 ? { steal: true } : { ifAvailable: true };
    await locks.request(`${name}:steal`, permitOptions, async (permit) => {
      if (permit === null) {
        permitMisses++;
        return;
      }
      permitMisses = 0;
      const now = await holder(locks, name);
      if (now === undefined || now !== before) return;
      // Granted at once; `callback` has started by the time this returns.
      let entered!: () => void;
      const started = new Promise<void>((resolve) => (entered = resolve));
      stealing = locks.request(name, { steal: true }, () => {
        entered();
        return callback();
      });
      await started;
    });
    if (stealing) {
      try {
        await stealing;
      } catch {
        // Stolen from in turn (this tab froze meanwhile): finish, but write nothing.
        stolen = true;
      }
      return await (running as unknown as Promise<T>);
    }
    // The holder changed (or let go), or another waiter is stealing: wait again.
  }
}

/**
 * Holds the lock `name` until `until` settles, as a sign the other tabs can
 * read with `isHeld`; resolves once held (or already held by another tab).
 * The lock manager orders it: a sign taken before a tab lets go of the
 * refresh lock is seen by the tab granted that lock next.
 */
export function hold(locks: Locks, name: string, until: Promise<void>): Promise<void> {
  return new Promise((held) => {
    locks
      .request(name, { ifAvailable: true }, (lock) => {
        held();
        return lock === null ? undefined : until;
      })
      .catch(() => held());
  });
}

/** Whether some tab holds the lock `name` (false when the lock manager cannot say). */
export async function isHeld(locks: Locks, name: string): Promise<boolean> {
  try {
    const snapshot = await locks.query();
    return snapshot.held?.some((l) => l.name === name) ?? false;
  } catch {
    return false;
  }
}

/** The same guarantee inside one tab, where there is no Web Locks API (or no need of it). */
export function localLocks(): Locks {
  const tails = new Map<string, Promise<unknown>>();
  const held = new Map<string, number>();
  return {
    request<T>(name: string, options: LockOptions, callback: (lock: Lock | null) => Promise<T> | T): Promise<T> {
      if (options.ifAvailable && tails.has(name)) return Promise.resolve().then(() => callback(null));
      const previous = tails.get(name) ?? Promise.resolve();
      const result = previous.then(async () => {
        held.set(name, (held.get(name) ?? 0) + 1);
        try {
          return await callback({ name, mode: "exclusive" } as Lock);
        } finally {
          const left = (held.get(name) ?? 1) - 1;
          if (left > 0) held.set(name, left);
          else held.delete(name);
        }
      });
      const tail = result.then(
        () => undefined,
        () => undefined,
      );
      tails.set(name, tail);
      void tail.then(() => {
        if (tails.get(name) === tail) tails.delete(name);
      });
      return result;
    },
    query: async () => ({
      held: [...held.keys()].map((name) => ({ name, mode: "exclusive" as const, clientId: "this-tab" })),
      pending: [],
    }),
  };
}
