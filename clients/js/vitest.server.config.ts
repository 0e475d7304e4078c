import { defineConfig } from "vitest/config";

// The client against a real latchkey (test-server/): run by `npm run test:server`.
export default defineConfig({
  test: { include: ["test-server/**/*.test.ts"], environment: "node", testTimeout: 20000, hookTimeout: 40000 },
});
