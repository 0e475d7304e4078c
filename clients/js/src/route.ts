// Filling a route's `{...}` parameters (see `RoutePath` in types.ts).

import type { FilledRoute, ParamRoute, RouteParams } from "./types.js";

/** `route` with each `{name}` replaced by `params[name]`, URI-encoded: `routePath("/auth/passkeys/{id}", { id })`. */
export function routePath<R extends ParamRoute>(route: R, params: Record<RouteParams<R>, string>): FilledRoute<R> {
  return route.replace(/\{([^}]+)\}/g, (_, name: string) =>
    encodeURIComponent((params as Record<string, string>)[name] ?? ""),
  ) as FilledRoute<R>;
}
