// `npm run e2e` starts here: make a clean checkout runnable, then run the test.
//
//   node e2e/bootstrap.mjs [--target=latchkey|django] [--mode=cookie]
//
// Installs the npm dependencies when node_modules is missing or older than
// package-lock.json, and checks for Debian's Chromium (the test never
// downloads a browser).
import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const installed = join(root, "node_modules", ".package-lock.json");
const lock = join(root, "package-lock.json");

if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  console.log("e2e: installing npm dependencies (npm ci)");
  execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: root, stdio: "inherit" });
}

const chromium = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
if (!existsSync(chromium)) {
  console.error(
    `e2e: no Chromium at ${chromium}. Install Debian's package: apt-get install -y chromium ` +
      "(or point CHROMIUM_PATH at a Chromium binary).",
  );
  process.exit(1);
}

await import(process.argv.includes("--mode=cookie") ? "./cookie.mjs" : "./run.mjs");
