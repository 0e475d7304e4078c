// The request and response bodies, named: every one is taken from
// openapi.ts, which openapi-typescript generates from the document latchkey
// serves (`npm run openapi`; CI regenerates it and fails on any difference),
// so the client cannot drift from the server without failing to compile.

import type { components, paths } from "./openapi.js";

type Schemas = components["schemas"];
type JsonOf<T> = T extends { content: { "application/json": infer B } } ? B : never;

/** A route of the served document, e.g. `"/auth/login"` or `"/auth/passkeys/{id}"`. */
export type Route = keyof paths;

/** The names of a route's `{...}` parameters: `"id"` for `"/auth/passkeys/{id}"`. */
export type RouteParams<R extends string> = R extends `${string}{${infer N}}${infer Rest}` ? N | RouteParams<Rest> : never;

/** A route with `{...}` parameters, e.g. `"/auth/sessions/{id}"`. */
export type ParamRoute = { [R in Route]: RouteParams<R> extends never ? never : R }[Route];

declare const filled: unique symbol;
/** A `ParamRoute` with its parameters filled in, as `routePath` makes it (only it can). */
export type FilledRoute<R extends ParamRoute = ParamRoute> = string & { readonly [filled]: R };

/**
 * What a request may be sent to: a route of the served document without
 * parameters, as written (`"/auth/passkeys/login"`), or one with parameters
 * filled in by `routePath`. Both name a key of `paths`, so a route the
 * server drops fails to compile (a template such as
 * `` `/auth/passkeys/${string}` `` would let its siblings through).
 */
export type RoutePath = Exclude<Route, ParamRoute> | FilledRoute;

/** The JSON body of `method path`'s answer with `status`. */
export type ResponseBody<
  P extends Route,
  M extends keyof paths[P],
  S extends number,
> = paths[P][M] extends { responses: infer R } ? (S extends keyof R ? JsonOf<R[S]> : never) : never;

/** The JSON body `method path` takes. */
export type RequestBody<P extends Route, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: { content: { "application/json": infer B } };
}
  ? B
  : never;

export type RegisterRequest = RequestBody<"/auth/register", "post">;
export type LoginRequest = RequestBody<"/auth/login", "post">;
export type PasswordChangeRequest = RequestBody<"/auth/password/change", "post">;
export type UserWithTokens = ResponseBody<"/auth/login", "post", 200>;
export type TokenPair = ResponseBody<"/auth/token/refresh", "post", 200>;
export type MeResponse = ResponseBody<"/auth/me", "get", 200>;
export type LogoutAllResponse = ResponseBody<"/auth/logout/all", "post", 200>;
export type SessionInfo = Schemas["SessionBody"];
export type MfaLoginRequest = RequestBody<"/auth/login/mfa", "post">;
export type MfaStatus = ResponseBody<"/auth/mfa", "get", 200>;
export type MfaPasswordRequest = RequestBody<"/auth/mfa/totp", "post">;
export type MfaCodeRequest = RequestBody<"/auth/mfa/totp/confirm", "post">;
export type TotpEnrolment = ResponseBody<"/auth/mfa/totp", "post", 200>;
export type RecoveryCodes = ResponseBody<"/auth/mfa/totp/confirm", "post", 200>;
export type Profile = ResponseBody<"/auth/me", "patch", 200>;
export type RenameRequest = RequestBody<"/auth/me", "patch">;
export type PasswordRequest = RequestBody<"/auth/me", "delete">;
export type PasswordResetRequest = RequestBody<"/auth/password/reset", "post">;
export type ResetConfirmRequest = RequestBody<"/auth/password/reset/confirm", "post">;
export type EmailTokenRequest = RequestBody<"/auth/email/verify", "post">;
export type EmailChangeRequest = RequestBody<"/auth/email/change", "post">;
export type PasskeyOptionsBody = ResponseBody<"/auth/passkeys/login/options", "post", 200>;
export type PasskeyRegisterRequest = RequestBody<"/auth/passkeys/register", "post">;
export type PasskeyLoginRequest = RequestBody<"/auth/passkeys/login", "post">;
export type Passkey = ResponseBody<"/auth/passkeys/register", "post", 201>;
export type DetailBody = Schemas["DetailBody"];
export type ErrorBody = Schemas["Error"];
export type FieldErrorsBody = Schemas["FieldErrors"];
