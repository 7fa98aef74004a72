// Tests that need something this machine may not allow (mount, chattr +i) probe it when the file
// loads and are declared with `test.skipIf(skipWithout(...))`: without it they are reported as
// skipped, never passed. Under CI they always run, so a missing capability fails them there.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function skipWithout(available: boolean, what: string, file: string): boolean {
  if (available || process.env.CI) return false;
  console.warn(`${file}: SKIPPED — ${what} is not available here`);
  return true;
}

/** Whether `chattr +i` works on a file in the temp directory (ext4/xfs as root; not tmpfs or overlayfs). */
export function canChattr(dir = tmpdir()): boolean {
  const probe = mkdtempSync(join(dir, "chattr-probe-"));
  const file = join(probe, "f");
  writeFileSync(file, "x");
  try {
    const ok = Bun.spawnSync(["chattr", "+i", file], { stderr: "pipe" }).exitCode === 0;
    if (ok) Bun.spawnSync(["chattr", "-i", file]);
    return ok;
  } catch {
    return false; // no chattr binary
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
