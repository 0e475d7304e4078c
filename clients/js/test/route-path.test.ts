// Requests name a route of the served document: `routePath` fills a
// parameterised one, and anything else fails to compile (checked by
// `tsc --noEmit`, which covers test/).
import { describe, expect, it } from "vitest";
import { routePath } from "../src/route.js";
import type { ParamRoute, RoutePath } from "../src/types.js";

const accept = (path: RoutePath) => path;

describe("RoutePath", () => {
  it("routePath fills and URI-encodes each parameter", () => {
    expect(routePath("/auth/passkeys/{id}", { id: "a/b c" })).toBe("/auth/passkeys/a%2Fb%20c");
    expect(routePath("/auth/sessions/{id}", { id: "s1" })).toBe("/auth/sessions/s1");
  });

  it("takes the document's routes only (the @ts-expect-error lines are the compile-time half)", () => {
    const params: ParamRoute[] = ["/auth/passkeys/{id}", "/auth/sessions/{id}"];
    expect(params).toHaveLength(2);
    accept("/auth/passkeys/login");
    accept("/auth/passkeys/register/options");
    accept(routePath("/auth/passkeys/{id}", { id: "x" }));
    // @ts-expect-error: not a route of the document
    accept("/auth/passkeys/nope");
    // @ts-expect-error: a parameterised route must go through routePath
    accept("/auth/passkeys/{id}");
    // @ts-expect-error: a hand-made path is no route
    accept(`/auth/passkeys/${"x"}` as `/auth/passkeys/${string}`);
    // @ts-expect-error: the parameter is required
    routePath("/auth/passkeys/{id}", {});
    // @ts-expect-error: only parameterised routes are filled
    routePath("/auth/passkeys/login", {});
  });
});
