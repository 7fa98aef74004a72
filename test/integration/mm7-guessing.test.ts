// Wrong passwords at /mm7: limited per client like the Channel API's keys, and one line on the status
// page however many there were, so the errors an operator needs stay in view.
import { expect, test } from "bun:test";
import { MM7_INBOUND, post, sendBody, waitFor } from "../support/app.ts";
import { startLoggedApp } from "../support/ops.ts";
import { startMmscStub } from "../peers/mm7-stub.ts";

test("60 wrong MM7 passwords: 30 answered 401, the rest 429; the status page keeps the real error and one counted line", async () => {
  const mmsc = await startMmscStub({ scenario: () => ({ kind: "status", code: 2001, text: "Operation restricted" }) });
  const app = await startLoggedApp({ carriers: { mms: { kind: "mm7", url: mmsc.url, vaspid: "V", vasid: "S" } }, inbound: { mm7: MM7_INBOUND } });
  try {
    // A real problem first: the MMSC refuses our credentials (carrier alarm).
    await post(app.url, "/mms", sendBody());
    await waitFor("alarm logged", () => app.activity.recentErrors().some((e) => e.msg === "mm7 carrier alarm: configuration problem"));

    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 60; i++) {
      const wrong = `Basic ${Buffer.from(`${MM7_INBOUND.username}:guess-${i}`).toString("base64")}`;
      const r = await fetch(`${app.url}/mm7`, { method: "POST", headers: { authorization: wrong, "content-type": "text/xml" }, body: "<x/>" });
      await r.arrayBuffer();
      statuses.push(r.status);
      if (r.status === 429) retryAfter ??= r.headers.get("retry-after");
    }
    expect(statuses.slice(0, 30)).toEqual(Array(30).fill(401));
    expect(statuses.slice(30)).toEqual(Array(30).fill(429));
    expect(retryAfter).toBe(String(app.config.server.retry_after_s));

    const errors = app.activity.recentErrors();
    expect(errors.some((e) => e.msg === "mm7 carrier alarm: configuration problem")).toBe(true);
    const guesses = errors.filter((e) => e.msg === "mm7 inbound: missing or wrong Basic credentials");
    expect(guesses).toHaveLength(1);
    expect(guesses[0]!.count).toBe(30);
    expect(guesses[0]!.first).toBeLessThanOrEqual(guesses[0]!.at);
    const page = await fetch(`${app.url}/status`, { headers: { authorization: `Bearer ${app.config.admin.token}` } }).then((r) => r.text());
    expect(page).toContain('data-k="problem-count">30<');
  } finally {
    await app.stop();
    await mmsc.stop();
  }
});
