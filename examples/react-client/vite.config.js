import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The API's address is read from VITE_API_URL at build time (see src/api.js).
export default defineConfig({
  plugins: [react()],
  server: { host: "127.0.0.1", port: 5173 },
  preview: { host: "127.0.0.1", port: 5173 },
});
