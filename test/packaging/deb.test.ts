// The Debian package: built from the compiled binary with dpkg-deb, inspected, installed into a
// throwaway root by dpkg itself (maintainer scripts run against that root through DPKG_ROOT), the
// installed binary checking the shipped configuration, upgraded, removed and purged; lintian and
// systemd-analyze judge it where they are installed (in CI they must be: .ci/run installs them).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { tempDir } from "../support/config-doc.ts";
import { binaryPath, requireBinary } from "../support/binary.ts";

const repo = resolve(import.meta.dir, "../..");
const has = (tool: string) => Bun.spawnSync(["sh", "-c", `command -v ${tool}`]).exitCode === 0;
// Locally a machine without the tool skips (saying so); in CI a missing tool is a failure.
function needs(tool: string): boolean {
  const ok = has(tool);
  if (!ok && !process.env.CI) console.warn(`deb.test.ts: SKIPPED the ${tool} check — not installed (apt-get install -y ${tool})`);
  return !ok && !process.env.CI;
}

function run(cmd: string[], env: Record<string, string> = {}): { code: number; out: string; err: string } {
  const p = Bun.spawnSync(cmd, { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: p.stdout.toString(), err: p.stderr.toString() };
}

function ok(cmd: string[], env: Record<string, string> = {}): string {
  const r = run(cmd, env);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} exited ${r.code}:\n${r.out}\n${r.err}`);
  return r.out + r.err;
}

const arch = has("dpkg") ? run(["dpkg", "--print-architecture"]).out.trim() : "";
const work = tempDir("gw-deb-");
let deb = "";
let root = "";

/** dpkg working on the throwaway root; scripts run unchrooted with DPKG_ROOT (there is no shell inside). */
const dpkg = (...args: string[]) => ok(["dpkg", `--root=${root}`, "--force-script-chrootless", "--force-depends", ...args]);

// Building and installing need Debian's dpkg; elsewhere the suite skips (saying so), never under CI.
const suite = needs("dpkg-deb") ? describe.skip : describe;

beforeAll(() => {
  if (!has("dpkg-deb")) return;
  requireBinary();
  deb = ok([join(repo, "packaging/build-deb.sh"), binaryPath, arch, join(work, "out")]).trim();
  root = join(work, "root");
  mkdirSync(join(root, "var/lib/dpkg/info"), { recursive: true });
  mkdirSync(join(root, "var/lib/dpkg/updates"), { recursive: true });
  mkdirSync(join(root, "var/log"), { recursive: true });
  writeFileSync(join(root, "var/lib/dpkg/status"), "");
}, 600_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

suite("mms-gateway .deb", () => {
  test("named and described as Debian expects", () => {
    expect(deb).toEndWith(`/mms-gateway_${pkg.version}_${arch}.deb`);
    const info = ok(["dpkg-deb", "-I", deb]);
    expect(info).toContain(" Package: mms-gateway\n");
    expect(info).toContain(` Version: ${pkg.version}\n`);
    expect(info).toContain(` Architecture: ${arch}\n`);
    expect(info).toMatch(/ Depends: libc6 \(>= [\d.]+\), systemd\n/);
    // Audio and video conversion is optional: the gateway works without it and says so in /readyz.
    expect(info).toContain(" Recommends: ffmpeg\n");
    for (const part of ["postinst", "prerm", "postrm", "conffiles", "md5sums"]) expect(info).toMatch(new RegExp(`lines +\\*? +${part} `));
    expect(ok(["dpkg-deb", "-f", deb, "Installed-Size"]).trim()).toMatch(/^\d{5,}$/);
    expect(ok(["dpkg-deb", "--ctrl-tarfile", deb]).length).toBeGreaterThan(0);
    expect(ok(["sh", "-c", `dpkg-deb --info "${deb}" conffiles`]).trim()).toBe("/etc/mms-gateway/gateway.toml");
  });

  test("contents: binary, unit, conffile, user and directory declarations, all root-owned", () => {
    const lines = ok(["dpkg-deb", "-c", deb]).trim().split("\n");
    const entry = (path: string) => lines.find((l) => l.endsWith(` ./${path}`));
    expect(entry("usr/bin/mms-gateway")).toMatch(/^-rwxr-xr-x root\/root /);
    for (const f of [
      "lib/systemd/system/mms-gateway.service",
      "etc/mms-gateway/gateway.toml",
      "usr/lib/sysusers.d/mms-gateway.conf",
      "usr/lib/tmpfiles.d/mms-gateway.conf",
      "usr/share/doc/mms-gateway/copyright",
      "usr/share/man/man1/mms-gateway.1.gz",
      "usr/share/mms-gateway/mms-gateway.json",
      "usr/share/mms-gateway/alerts.yml",
    ])
      expect(entry(f)).toMatch(/^-rw-r--r-- root\/root /);
    expect(lines.every((l) => / root\/root /.test(l))).toBe(true);
  });

  test("installs into a throwaway root: user, private state directory, enabled but not started", () => {
    const out = dpkg("-i", deb);
    expect(out).toContain("mms-gateway is enabled but not started");
    expect(ok(["dpkg-query", `--admindir=${join(root, "var/lib/dpkg")}`, "-W", "-f", "${Status} ${Version}", "mms-gateway"])).toBe(
      `install ok installed ${pkg.version}`,
    );
    const user = readFileSync(join(root, "etc/passwd"), "utf8").split("\n").find((l) => l.startsWith("mms-gateway:"));
    expect(user).toBeDefined();
    const [, , uid, gid, , home, shell] = user!.split(":");
    expect(home).toBe("/var/lib/mms-gateway");
    expect(shell).toBe("/usr/sbin/nologin");
    expect(Number(uid)).toBeLessThan(1000); // a system user
    const state = statSync(join(root, "var/lib/mms-gateway"));
    expect(state.isDirectory()).toBe(true);
    expect(state.mode & 0o777).toBe(0o700);
    expect(state.uid).toBe(Number(uid));
    const conf = statSync(join(root, "etc/mms-gateway/gateway.toml"));
    expect(conf.mode & 0o777).toBe(0o640);
    expect(conf.uid).toBe(0);
    expect(conf.gid).toBe(Number(gid));
    // Enabled: the wants link systemctl enable would make, pointing at the packaged unit.
    const link = join(root, "etc/systemd/system/multi-user.target.wants/mms-gateway.service");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe("/lib/systemd/system/mms-gateway.service");
  });

  test("the installed unit runs the installed binary as the package's user; the installed binary accepts the shipped config", () => {
    const unit = readFileSync(join(root, "lib/systemd/system/mms-gateway.service"), "utf8");
    expect(unit).toContain("\nExecStartPre=/usr/bin/mms-gateway check-config /etc/mms-gateway/gateway.toml\n");
    expect(unit).toContain("\nExecStart=/usr/bin/mms-gateway serve --config /etc/mms-gateway/gateway.toml\n");
    expect(unit).toContain("\nUser=mms-gateway\nGroup=mms-gateway\n");
    expect(unit).not.toContain("DynamicUser");
    expect(unit).not.toContain("/usr/local");

    const conf = join(root, "etc/mms-gateway/gateway.toml");
    const text = readFileSync(conf, "utf8");
    expect(text).toContain('\npath = "/var/lib/mms-gateway/gateway.db"\n');
    expect(text.match(/^kind = "sandbox"$/gm)).toHaveLength(2);
    const r = run([join(root, "usr/bin/mms-gateway"), "check-config", conf]);
    expect(r.err).toBe("");
    expect(r.out.trim()).toBe(`${conf}: ok`);
    expect(r.code).toBe(0);
  });

  test.skipIf(needs("systemd-analyze"))("systemd-analyze verify accepts the installed unit", () => {
    // What a real system has and the unit refers to: the targets it is ordered against, /bin/kill.
    ok(["sh", "-c", `mkdir -p "${root}/bin" && cp /bin/kill "${root}/bin/" && cp -n /lib/systemd/system/*.target "${root}/lib/systemd/system/"`]);
    const r = run(["systemd-analyze", "verify", `--root=${root}`, "/lib/systemd/system/mms-gateway.service"]);
    // verify prints nothing for a clean unit; every line it prints is a finding.
    expect(r.out + r.err).toBe("");
    expect(r.code).toBe(0);
  });

  test("upgrade keeps the operator's edited config and their choice to disable", () => {
    const conf = join(root, "etc/mms-gateway/gateway.toml");
    appendFileSync(conf, "# edited by the operator\n");
    ok(["systemctl", `--root=${root}`, "disable", "mms-gateway.service"]);
    const link = join(root, "etc/systemd/system/multi-user.target.wants/mms-gateway.service");
    expect(existsSync(link)).toBe(false);
    const out = dpkg("-i", deb);
    expect(out).not.toContain("enabled but not started");
    expect(readFileSync(conf, "utf8")).toEndWith("# edited by the operator\n");
    expect(existsSync(link)).toBe(false);
  });

  test("remove keeps config and data; purge drops the config and keeps the database directory", () => {
    dpkg("-r", "mms-gateway");
    expect(existsSync(join(root, "usr/bin/mms-gateway"))).toBe(false);
    expect(existsSync(join(root, "etc/mms-gateway/gateway.toml"))).toBe(true);
    dpkg("--purge", "mms-gateway");
    expect(existsSync(join(root, "etc/mms-gateway/gateway.toml"))).toBe(false);
    expect(existsSync(join(root, "var/lib/mms-gateway"))).toBe(true);
  });

  test.skipIf(needs("lintian"))("lintian: no error or warning beyond the explained overrides", () => {
    const r = run(["lintian", "--fail-on", "error,warning", deb]);
    expect((r.out + r.err).replace("running with root privileges is not recommended!\n", "")).toBe("");
    expect(r.code).toBe(0);
    // Each override carries its reason in the comment above it.
    const overrides = readFileSync(join(repo, "packaging/debian/lintian-overrides"), "utf8").split("\n");
    overrides.forEach((l, i) => {
      if (l.startsWith("mms-gateway:")) expect(overrides.slice(0, i).findLast((x) => !x.startsWith("mms-gateway:"))).toMatch(/^# /);
    });
  }, 600_000);
});
