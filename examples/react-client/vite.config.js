import { resolve } from "node:path";
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The API's address is read from VITE_API_URL at build time (see src/api.js).
// Two pages: index.html (the seed's plain fetch) and sdk.html (latchkey-client).
export default defineConfig({
  plugins: [react()],
  // latchkey-client is linked from clients/js, which has React of its own for
  // its type checks: one React for the app.
  resolve: { dedupe: ["react", "react-dom"] },
  build: {
    rollupOptions: {
      input: { seed: resolve(import.meta.dirname, "index.html"), sdk: resolve(import.meta.dirname, "sdk.html") },
    },
  },
  server: { host: "127.0.0.1", port: 5173 },
  preview: { host: "127.0.0.1", port: 5173 },
});
