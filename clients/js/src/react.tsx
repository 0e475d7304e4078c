// React bindings: <LatchkeyProvider client={...}> and useSession(). The
// state comes from the client's store through useSyncExternalStore, so a
// login, refresh or logout in another tab re-renders this one.

import { createContext, useCallback, useContext, useMemo, useSyncExternalStore, type ReactNode } from "react";
import type { LatchkeyClient, SessionState } from "./client.js";
import type { PasskeyLoginOptions } from "./passkeys.js";
import type { LoginRequest, RegisterRequest } from "./types.js";
import type { User } from "./storage.js";

const ClientContext = createContext<LatchkeyClient | null>(null);

export function LatchkeyProvider({ client, children }: { client: LatchkeyClient; children?: ReactNode }) {
  return <ClientContext.Provider value={client}>{children}</ClientContext.Provider>;
}

/** The client given to the nearest <LatchkeyProvider>. */
export function useLatchkey(): LatchkeyClient {
  const client = useContext(ClientContext);
  if (!client) throw new Error("useLatchkey/useSession must be used inside <LatchkeyProvider>.");
  return client;
}

export interface UseSession extends SessionState {
  /** Rejects with `MfaRequiredError` (`code: "mfa_required"`) for an account with a second factor: then `loginMfa`. */
  login(form: LoginRequest): Promise<User>;
  loginMfa(mfaToken: string, code: string): Promise<User>;
  loginWithPasskey(options?: PasskeyLoginOptions): Promise<User>;
  register(form: RegisterRequest): Promise<User>;
  logout(): Promise<void>;
}

/** The signed-in user (or null), the status, and the actions that change them. */
export function useSession(): UseSession {
  const client = useLatchkey();
  const state = useSyncExternalStore(client.subscribe, client.getState, client.getState);
  const login = useCallback((form: LoginRequest) => client.login(form), [client]);
  const loginMfa = useCallback((mfaToken: string, code: string) => client.loginMfa(mfaToken, code), [client]);
  const loginWithPasskey = useCallback((options?: PasskeyLoginOptions) => client.loginWithPasskey(options), [client]);
  const register = useCallback((form: RegisterRequest) => client.register(form), [client]);
  const logout = useCallback(() => client.logout(), [client]);
  return useMemo(
    () => ({ ...state, login, loginMfa, loginWithPasskey, register, logout }),
    [state, login, loginMfa, loginWithPasskey, register, logout],
  );
}
