import { afterEach, describe, expect, it, vi } from "vitest";
import { hold, isHeld, localLocks, withLock, type Locks } from "../src/lock.js";

/**
 * A Web Locks manager for several "tabs" (clients): exclusive locks, FIFO
 * waiters, `signal` to give up waiting, `steal` to take the lock from its
 * holder (whose request then rejects with AbortError), `query` with client ids.
 */
class FakeLockManager {
  private holder: { client: string; reject: (e: unknown) => void } | null = null;
  private queue: Array<{ client: string; grant: () => void }> = [];

  private readonly others = new Map<string, FakeLockManager>();

  tab(client: string): Locks {
    return {
      request: <T>(name: string, options: LockOptions, callback: (lock: Lock | null) => Promise<T> | T) =>
        name === "l" ? this.one(client, options, callback) : this.named(name).one(client, options, callback),
      // The snapshot is taken at the call and arrives a little later, as a real one may.
      query: () => {
        const snapshot = {
          held: this.holder ? [{ name: "l", mode: "exclusive" as const, clientId: this.holder.client }] : [],
          pending: [],
        };
        return new Promise((resolve) => setTimeout(() => resolve(snapshot), 5));
      },
    };
  }

  private named(name: string): FakeLockManager {
    let manager = this.others.get(name);
    if (!manager) this.others.set(name, (manager = new FakeLockManager()));
    return manager;
  }

  one<T>(client: string, options: LockOptions, callback: (lock: Lock | null) => Promise<T> | T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const run = () => {
        const entry = { client, reject };
        this.holder = entry;
        Promise.resolve(callback({ name: "l", mode: "exclusive" } as Lock)).then(
          (value) => {
            if (this.holder === entry) this.release();
            resolve(value);
          },
          (error) => {
            if (this.holder === entry) this.release();
            reject(error);
          },
        );
      };
      if (options.steal) {
        this.holder?.reject(new DOMException("stolen", "AbortError"));
        return run();
      }
      if (!this.holder) return run();
      if (options.ifAvailable) {
        Promise.resolve(callback(null)).then(resolve, reject);
        return;
      }
      const waiter = { client, grant: run };
      this.queue.push(waiter);
      options.signal?.addEventListener("abort", () => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) {
          this.queue.splice(i, 1);
          reject(options.signal!.reason);
        }
      });
    });
  }

  private release() {
    this.holder = null;
    this.queue.shift()?.grant();
  }
}

const never = () => new Promise<never>(() => {});

afterEach(() => vi.useRealTimers());

describe("the cross-tab lock", () => {
  it("runs one critical section at a time, in order", async () => {
    const manager = new FakeLockManager();
    const order: string[] = [];
    const section = (name: string) => async () => {
      order.push(`${name} in`);
      await new Promise((r) => setTimeout(r, 5));
      order.push(`${name} out`);
      return name;
    };
    const results = await Promise.all([
      withLock(manager.tab("a"), "l", 1000, section("a")),
      withLock(manager.tab("b"), "l", 1000, section("b")),
    ]);
    expect(results).toEqual(["a", "b"]);
    expect(order).toEqual(["a in", "a out", "b in", "b out"]);
  });

  it("a frozen holder is stolen from after the timeout, and the other tab goes on", async () => {
    const manager = new FakeLockManager();
    // Tab "frozen" takes the lock and never lets go.
    manager.tab("frozen").request("l", {}, never).catch(() => "stolen from");
    const started = Date.now();
    const result = await withLock(manager.tab("b"), "l", 100, async () => "b ran", () => 0);
    expect(result).toBe("b ran");
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("a tab whose lock was stolen learns it before writing", async () => {
    const manager = new FakeLockManager();
    let release!: () => void;
    const slow = withLock(manager.tab("slow"), "l", 100, async (isStolen) => {
      await new Promise<void>((r) => (release = r));
      return isStolen();
    });
    await new Promise((r) => setTimeout(r, 0));
    const thief = await withLock(manager.tab("thief"), "l", 50, async (isStolen) => isStolen(), () => 0);
    expect(thief).toBe(false);
    release();
    expect(await slow).toBe(true);
  });

  it("a waiter that sees the holder change waits again instead of stealing", async () => {
    const manager = new FakeLockManager();
    const ran: string[] = [];
    // a holds for 80 ms; b waits (timeout 50 ms) behind it; c waits behind b.
    const a = withLock(manager.tab("a"), "l", 1000, async () => {
      await new Promise((r) => setTimeout(r, 80));
      ran.push("a");
    });
    await new Promise((r) => setTimeout(r, 0));
    const b = withLock(manager.tab("b"), "l", 1000, async () => {
      await new Promise((r) => setTimeout(r, 60));
      ran.push("b");
    });
    await new Promise((r) => setTimeout(r, 0));
    // c's 100 ms timeout ends while b holds (a held when c began): c must not steal from b.
    const c = withLock(manager.tab("c"), "l", 100, async () => {
      ran.push("c");
    }, () => 0);
    await Promise.all([a, b, c]);
    expect(ran).toEqual(["a", "b", "c"]);
  });

  it("two waiters that time out together steal from the frozen holder once, not from each other", async () => {
    const manager = new FakeLockManager();
    manager.tab("frozen").request("l", {}, never).catch(() => "stolen from");
    let inside = 0;
    let most = 0;
    const section = (name: string) => async (isStolen: () => boolean) => {
      most = Math.max(most, ++inside);
      await new Promise((r) => setTimeout(r, 30));
      inside--;
      return `${name}${isStolen() ? " (stolen)" : ""}`;
    };
    const results = await Promise.all([
      withLock(manager.tab("a"), "l", 50, section("a"), () => 0),
      withLock(manager.tab("b"), "l", 50, section("b"), () => 0),
    ]);
    expect(results.sort()).toEqual(["a", "b"]);
    expect(most).toBe(1);
  });

  it("a waiter that froze holding the steal permit does not stop the others for good", async () => {
    const manager = new FakeLockManager();
    manager.tab("frozen").request("l", {}, never).catch(() => "stolen from");
    manager.tab("frozen thief").request("l:steal", {}, never).catch(() => "stolen from");
    const result = await withLock(manager.tab("b"), "l", 30, async () => "b ran", () => 0);
    expect(result).toBe("b ran");
  });

  it("a critical section's failure reaches its caller and frees the lock", async () => {
    const manager = new FakeLockManager();
    await expect(
      withLock(manager.tab("a"), "l", 100, async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await withLock(manager.tab("b"), "l", 100, async () => "free")).toBe("free");
  });
});

describe("signs held as locks", () => {
  it("a sign one tab holds is seen by another until it is let go, and a second hold of it does not wait", async () => {
    const locks = localLocks();
    let release!: () => void;
    await hold(locks, "sign", new Promise<void>((r) => (release = r)));
    expect(await isHeld(locks, "sign")).toBe(true);
    expect(await isHeld(locks, "other")).toBe(false);
    await hold(locks, "sign", new Promise<void>(() => {}));
    release();
    await new Promise((r) => setTimeout(r, 0));
    expect(await isHeld(locks, "sign")).toBe(false);
  });

  it("a lock manager that cannot answer reads as no sign", async () => {
    const broken: Locks = { request: () => Promise.reject(new Error("no")), query: () => Promise.reject(new Error("no")) };
    await hold(broken, "sign", Promise.resolve());
    expect(await isHeld(broken, "sign")).toBe(false);
  });
});
