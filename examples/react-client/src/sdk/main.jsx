// The same app built on latchkey-client: the SDK keeps the tokens, the CSRF
// token and the refresh; the components only read useSession().
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { createClient } from "latchkey-client";
import { LatchkeyProvider } from "latchkey-client/react";
import { API_URL } from "../api.js";
import SdkApp from "./SdkApp.jsx";
import "../styles.css";

// `?lockTimeoutMs=` shortens the wait for a frozen tab's lock (the e2e uses
// it); `?storage=cookie` is the SDK's cookie mode, for a latchkey with
// LATCHKEY_REFRESH_COOKIE=true (`npm run e2e:sdk:cookie`).
const params = new URLSearchParams(location.search);
const lockTimeoutMs = Number(params.get("lockTimeoutMs")) || undefined;
const storage = params.get("storage") === "cookie" ? "cookie" : undefined;
const client = createClient({ baseUrl: API_URL, lockTimeoutMs, storage });

createRoot(document.getElementById("root")).render(
  <StrictMode>
    <LatchkeyProvider client={client}>
      <SdkApp />
    </LatchkeyProvider>
  </StrictMode>,
);
