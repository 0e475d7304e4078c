// Regenerates src/openapi.ts from latchkey's OpenAPI document (`latchkey
// openapi` prints the document served at /openapi.json).
//
//   npm run openapi              rewrite src/openapi.ts
//   npm run openapi -- --check   fail when src/openapi.ts differs (CI)
//
// The binary: LATCHKEY_BIN, else target/release/latchkey (CARGO_TARGET_DIR
// respected). Nothing is built here: CI's e2e script builds it once.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = join(root, "..", "..");
const binary =
  process.env.LATCHKEY_BIN || join(process.env.CARGO_TARGET_DIR || join(repoRoot, "target"), "release", "latchkey");
if (!existsSync(binary)) {
  console.error(`openapi: no latchkey binary at ${binary} (build it, or set LATCHKEY_BIN).`);
  process.exit(1);
}
const check = process.argv.includes("--check");
const target = join(root, "src", "openapi.ts");
const work = mkdtempSync(join(tmpdir(), "latchkey-openapi-"));
try {
  const document = join(work, "openapi.json");
  writeFileSync(document, execFileSync(binary, ["openapi"]));
  const generated = join(work, "openapi.ts");
  execFileSync(join(root, "node_modules", ".bin", "openapi-typescript"), [document, "-o", generated, "--silent"], {
    stdio: "inherit",
  });
  const fresh = readFileSync(generated, "utf8");
  if (!check) {
    writeFileSync(target, fresh);
    console.log(`openapi: wrote ${target}`);
  } else if (fresh !== readFileSync(target, "utf8")) {
    console.error(
      "openapi: src/openapi.ts differs from the types of the document latchkey serves.\n" +
        "Run `npm run openapi` in clients/js and commit the result (then fix what no longer type-checks).",
    );
    process.exit(1);
  } else {
    console.log("openapi: src/openapi.ts matches the served document");
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
