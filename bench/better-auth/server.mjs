// better-auth as a peer in latchkey's benchmark (bench/peers.py starts it).
//
//   NODE_ENV=production PORT=8412 BETTER_AUTH_DB=/tmp/ba.db node server.mjs
//
// A plain Node `http` server around better-auth's node handler: SQLite
// through better-sqlite3 (file from BETTER_AUTH_DB), email and password on,
// the jwt plugin on (its defaults: EdDSA keys in the jwks table, a JWT on
// every get-session in `set-auth-jwt`, GET /api/auth/token), the rate
// limiter off so the load is not refused, telemetry off. The schema is
// created at start with better-auth's own migration planner. Prints
// "listening <port>" once it serves.
import { randomBytes } from "node:crypto";
import http from "node:http";

import Database from "better-sqlite3";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins/jwt";

const port = Number(process.env.PORT ?? "8412");
const file = process.env.BETTER_AUTH_DB;
if (!file) {
  console.error("BETTER_AUTH_DB (the SQLite file) is required");
  process.exit(2);
}
if (process.env.NODE_ENV !== "production") {
  console.error("run with NODE_ENV=production (the benchmark measures production mode)");
  process.exit(2);
}

const db = new Database(file);
// better-auth's documented SQLite setup leaves the journal mode to the
// caller; WAL is what a production deployment would pick (latchkey uses it).
db.pragma("journal_mode = WAL");

const auth = betterAuth({
  baseURL: `http://127.0.0.1:${port}`,
  // A fresh secret per start: the benchmark's sessions live for one run.
  secret: process.env.BETTER_AUTH_SECRET ?? randomBytes(32).toString("hex"),
  database: db,
  emailAndPassword: { enabled: true },
  plugins: [jwt()],
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
});

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

const server = http.createServer(toNodeHandler(auth));
server.keepAliveTimeout = 60_000;
server.listen(port, "127.0.0.1", () => console.log(`listening ${port}`));

const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
