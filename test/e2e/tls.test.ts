// HTTPS without a proxy, against the compiled binary: the gateway serves server.tls_cert itself, and
// SIGHUP makes new connections get the rotated certificate with no restart and no dropped listener.
import { expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:tls";
import { join } from "node:path";
import { tempDir, testConfigDoc, waitFor } from "../support/app.ts";
import { binaryPath, configFor, freePort, requireBinary } from "../support/binary.ts";

/** A self-signed certificate for 127.0.0.1 made by openssl; returns its PEM files' contents. */
function selfSigned(dir: string, cn: string): { cert: string; key: string; serial: string } {
  const key = join(dir, `${cn}.key`);
  const cert = join(dir, `${cn}.crt`);
  const p = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", `/CN=${cn}`, "-addext", "subjectAltName=IP:127.0.0.1"]);
  if (p.exitCode !== 0) throw new Error(`openssl failed: ${p.stderr.toString()}`);
  const serial = Bun.spawnSync(["openssl", "x509", "-in", cert, "-noout", "-serial"]).stdout.toString().trim().replace(/^serial=/, "");
  return { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8"), serial };
}

/**
 * The serial number of the certificate a fresh TLS connection is shown. A connection that lands in
 * the old listener's accept queue at the instant it closes is reset (SO_REUSEPORT hand-over, see the
 * README): that counts as "not yet", and the caller tries again.
 */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().serialNumber.toUpperCase());
      s.end();
    });
    s.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? resolve("reset") : reject(e)));
  });
}

test("serves HTTPS from server.tls_cert/tls_key and rotates the certificate on SIGHUP", async () => {
  requireBinary();
  const dir = tempDir();
  const first = selfSigned(dir, "first");
  const second = selfSigned(dir, "second");
  expect(first.serial).not.toBe(second.serial);
  const certPath = join(dir, "tls.crt");
  const keyPath = join(dir, "tls.key");
  writeFileSync(certPath, first.cert);
  writeFileSync(keyPath, first.key);
  const port = freePort();
  const config = configFor(dir, testConfigDoc(dir, { log: { level: "info" }, server: { listen: `127.0.0.1:${port}`, tls_cert: certPath, tls_key: keyPath } }));
  const out: string[] = [];
  const proc = Bun.spawn([binaryPath, "serve", "--config", config], { stdout: "pipe", stderr: "pipe" });
  void (async () => {
    for await (const c of proc.stdout as ReadableStream<Uint8Array>) out.push(new TextDecoder().decode(c));
  })();
  try {
    const base = `https://127.0.0.1:${port}`;
    // Verified against the first certificate as the trust anchor, not just "any certificate".
    const ok = await waitFor("HTTPS up", async () => (await fetch(`${base}/healthz`, { tls: { ca: first.cert } }).catch(() => null))?.ok);
    expect(ok).toBe(true);
    expect(await servedSerial(port)).toBe(first.serial);
    expect(await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status).catch(() => "refused")).not.toBe(200);

    // Rotation: new files in place, then SIGHUP.
    writeFileSync(certPath, second.cert);
    writeFileSync(keyPath, second.key);
    proc.kill("SIGHUP");
    await waitFor("new certificate served", async () => (await servedSerial(port)) === second.serial);
    expect((await fetch(`${base}/healthz`, { tls: { ca: second.cert } })).status).toBe(200);
    expect(await fetch(`${base}/healthz`, { tls: { ca: first.cert } }).then(() => "trusted", () => "refused")).toBe("refused");

    // A broken file on reload: logged, and the current certificate keeps being served.
    writeFileSync(certPath, "not a certificate");
    proc.kill("SIGHUP");
    await waitFor("reload failure logged", () => out.join("").includes("TLS reload failed"));
    expect(await servedSerial(port)).toBe(second.serial);
    expect(proc.exitCode).toBeNull();
  } finally {
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  }
});
