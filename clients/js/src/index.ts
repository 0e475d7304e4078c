export { createClient, LatchkeyClient } from "./client.js";
export type { ChannelLike, ClientOptions, SessionState, SignOutReason, Status } from "./client.js";
export { LatchkeyError, errorFromResponse, parseRetryAfter } from "./errors.js";
export type { ErrorCode, FieldErrors, KnownErrorCode } from "./errors.js";
export { DEFAULT_STORAGE_KEY, localStorageStore, memoryStore } from "./storage.js";
export type { Session, SessionStore, Tokens, User } from "./storage.js";
export type { Locks } from "./lock.js";
export type * from "./types.js";
