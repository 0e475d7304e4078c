// `npm run e2e` starts here: make a clean checkout runnable, then run the test.
//
//   node e2e/bootstrap.mjs [--target=latchkey|django] [--suite=sdk|mfa|account|passkeys] [--mode=cookie]
//
// Installs the npm dependencies when node_modules is missing or older than
// package-lock.json, builds latchkey-client (clients/js, which the SDK page
// links) when its dist/ is missing or older than its sources, and checks for
// Debian's Chromium (the test never downloads a browser).
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const installed = join(root, "node_modules", ".package-lock.json");
const lock = join(root, "package-lock.json");

if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  console.log("e2e: installing npm dependencies (npm ci)");
  execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: root, stdio: "inherit" });
}

const sdk = join(root, "..", "..", "clients", "js");
const newest = (dir) =>
  Math.max(...readdirSync(dir, { recursive: true }).map((f) => statSync(join(dir, String(f))).mtimeMs));
const built = join(sdk, "dist", "index.js");
if (!existsSync(built) || statSync(built).mtimeMs < newest(join(sdk, "src"))) {
  if (!existsSync(join(sdk, "node_modules", ".package-lock.json"))) {
    console.log("e2e: installing latchkey-client's npm dependencies (npm ci in clients/js)");
    execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: sdk, stdio: "inherit" });
  }
  console.log("e2e: building latchkey-client (npm run build in clients/js)");
  execFileSync("npm", ["run", "build"], { cwd: sdk, stdio: "inherit" });
}

const chromium = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
if (!existsSync(chromium)) {
  console.error(
    `e2e: no Chromium at ${chromium}. Install Debian's package: apt-get install -y chromium ` +
      "(or point CHROMIUM_PATH at a Chromium binary).",
  );
  process.exit(1);
}

const suite = process.argv.includes("--suite=sdk")
  ? "./sdk.mjs"
  : process.argv.includes("--suite=mfa")
    ? "./mfa.mjs"
    : process.argv.includes("--suite=account")
      ? "./account.mjs"
      : process.argv.includes("--suite=passkeys")
        ? "./passkeys.mjs"
        : process.argv.includes("--mode=cookie")
          ? "./cookie.mjs"
          : "./run.mjs";
await import(suite);
