// The gateway's own housekeeping, on a fake clock: the automatic purge keeps every dedup key for the
// whole configured window, so a retry inside it is answered from the store and never sent again.
import { afterAll, expect, test } from "bun:test";
import pino from "pino";
import { startApp, type App } from "../../src/app.ts";
import { post, sendBody, sqlite, tempDir, testConfig, waitFor } from "../support/app.ts";

const HOUR = 3_600_000;
const clock = { t: Date.UTC(2026, 0, 1) };
let app: App;
afterAll(() => app?.stop());

test("a retry inside store.dedup_window_hours gets the stored answer after the automatic purge ran; after the window it is new", async () => {
  // Retention (1 h) shorter than the dedup window (3 h): the purge that removes the finished message
  // proves it ran, and it must leave the dedup key alone.
  const config = testConfig(tempDir(), { store: { dedup_window_hours: 3, retention_hours: 1 } });
  app = await startApp(config, { log: pino({ level: "silent" }), now: () => clock.t });
  const body = sendBody({ subject: undefined, fallback_text: undefined });
  const first = await post(app.url, "/sms", body);
  expect(first.status).toBe(200);
  await waitFor("delivered", async () => (await app.store.getMessage(first.json.id))?.state === "delivered");

  clock.t += 2 * HOUR;
  await waitFor("the automatic purge of the finished message", async () => (await app.store.getMessage(first.json.id)) === null);
  const retry = await post(app.url, "/sms", body);
  expect(retry.status).toBe(200);
  expect(retry.json.id).toBe(first.json.id);
  expect(sqlite(app.store).db.query("SELECT COUNT(*) AS n FROM messages").get()).toEqual({ n: 0 });

  // Past the window the key goes too, and the same request_id is a new message.
  clock.t += 2 * HOUR;
  await waitFor("the automatic purge of the dedup key", () => (sqlite(app.store).db.query("SELECT COUNT(*) AS n FROM dedup").get() as { n: number }).n === 0);
  const late = await post(app.url, "/sms", body);
  expect(late.status).toBe(200);
  expect(late.json.id).not.toBe(first.json.id);
});
