export { createClient, LatchkeyClient } from "./client.js";
export type { ChannelLike, ClientOptions, MfaApi, SequenceStore, SessionState, SignOutReason, Status } from "./client.js";
export { LatchkeyError, MfaRequiredError, errorFromResponse, isMfaRequired, parseRetryAfter } from "./errors.js";
export type { ErrorCode, FieldErrors, KnownErrorCode, MfaMethod } from "./errors.js";
export { COOKIE_STORAGE_KEY, DEFAULT_STORAGE_KEY, localStorageStore, memoryStore } from "./storage.js";
export type { Session, SessionStore, Tokens, User } from "./storage.js";
export type { Locks } from "./lock.js";
export type * from "./types.js";
export type * from "./passkeys.js";
