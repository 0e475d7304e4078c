// The e2e scripts' way of reporting: a checked assertion printed with a
// tick, and numbered steps that leave a screenshot whether they pass or fail.

import assert from "node:assert/strict";
import { join } from "node:path";

/** Assert `condition`, and print `what` once it holds. */
export function check(condition, what) {
  assert.ok(condition, what);
  console.log(`    ✓ ${what}`);
}

/** A `step(title, page, body)` that numbers steps and screenshots `page` into `outDir` after each. */
export function stepper(outDir) {
  let stepNumber = 0;
  return async function step(title, page, body) {
    const number = String(++stepNumber).padStart(2, "0");
    console.log(`  ${number} ${title}`);
    try {
      await body();
    } finally {
      const slug = `${number}-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/-$/, "")}`;
      await page.screenshot({ path: join(outDir, `${slug}.png`), fullPage: true }).catch(() => {});
    }
  };
}
