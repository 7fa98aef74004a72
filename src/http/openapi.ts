// GET /openapi.json: the Channel API as this gateway serves it (OpenAPI 3.1), built from the TypeBox
// schemas the intake validates with and the webhook event schema, with the configured limits filled in.
// docs/openapi.json is this document for the default configuration (a test keeps them identical).
import { Elysia } from "elysia";
import { Type as T, type TSchema } from "@sinclair/typebox";
import { DeliveryEventSchema } from "../domain/event.ts";
import { aliases, Canonical, MediaItem, type SendLimits } from "../pipeline/send-request.ts";

export interface OpenApiOptions {
  version: string;
  limits: SendLimits;
  maxBodyBytes: number;
}

/** A plain JSON copy (TypeBox's symbol keys dropped) with extra keywords merged in. */
function plain(schema: TSchema, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...(JSON.parse(JSON.stringify(schema)) as Record<string, unknown>), ...extra };
}

function withAliases(field: string, schema: Record<string, unknown>): Record<string, unknown> {
  const others = (aliases[field] ?? []).filter((a) => a !== field);
  if (others.length === 0) return schema;
  return { ...schema, description: `${schema.description ?? ""} Also accepted as: ${others.join(", ")}.`.trim() };
}

function sendBody(channel: "mms" | "sms", o: OpenApiOptions): Record<string, unknown> {
  const l = o.limits;
  const limits: Record<string, Record<string, unknown>> = {
    subject: { maxLength: l.subject_max_chars },
    text: { maxLength: l.text_max_chars },
    request_id: { description: `${Canonical.properties.request_id.description} At most ${l.request_id_max_chars} characters.` },
    custom_data: { description: `${Canonical.properties.custom_data.description} At most ${l.custom_data_max_bytes} bytes (UTF-8).` },
    metadata: { description: `${Canonical.properties.metadata.description} At most ${l.metadata_max_bytes} bytes as JSON.` },
    from: { pattern: "^(?:(?:\\+|00)?\\d{3,15}|[A-Za-z0-9 ._&-]{1,11})$" },
    to: { pattern: "^(?:00|\\+)\\d{7,15}$" },
    callback_url: { format: "uri" },
  };
  const properties: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(Canonical.properties)) {
    if (channel === "sms" && (name === "subject" || name === "fallback_text")) continue;
    properties[name] = withAliases(name, plain(schema as TSchema, limits[name]));
  }
  if (channel === "mms") {
    const item = plain(MediaItem);
    properties.media = {
      description: `One item or an array of at most ${l.media_max_items}. An MMS needs at least one media item or a non-empty text.`,
      oneOf: [item, { type: "array", items: item, minItems: 1, maxItems: l.media_max_items }],
    };
  }
  return { type: "object", properties, required: Canonical.required };
}

const errorSchema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: {
        code: { type: "string" },
        field: { type: "string", description: "The field at fault (400 invalid_field, 403 sender_not_allowed)." },
        message: { type: "string", description: "For people: Bloomreach shows it to its user." },
      },
    },
  },
};

const accepted = plain(
  T.Object({
    id: T.String({ description: "The gateway's message id; delivery reports carry it as message_id." }),
    request_id: T.Union([T.String(), T.Null()]),
    status: T.Literal("accepted"),
  }),
);

const json = (schema: unknown) => ({ "application/json": { schema } });
const retryAfter = { "Retry-After": { description: "Seconds to wait before retrying.", schema: { type: "integer" } } };
const error = (description: string) => ({ description, content: json({ $ref: "#/components/schemas/Error" }) });

function sendResponses(o: OpenApiOptions): Record<string, unknown> {
  return {
    "200": {
      description:
        "Stored durably (on disk) and now the gateway's job: Bloomreach records the message as enqueued. A repeated request_id gets the original answer (this one, or the stored 400/403) and sends nothing again.",
      content: json(accepted),
    },
    "400": error("invalid_json: the body is not JSON. invalid_field: a field is missing or invalid, named in `field` (also a callback or media URL the egress rules refuse). Bloomreach: enqueue_failed."),
    "401": error("unauthorized: the Chan-* headers match no account. Bloomreach: enqueue_failed."),
    "403": error("account_disabled: the account is disabled. sender_not_allowed: `from` is not among the account's allowed senders. Bloomreach: enqueue_failed."),
    "413": error(`too_large: the body is over ${o.maxBodyBytes} bytes. Bloomreach: enqueue_failed.`),
    "415": error("unsupported_media_type: the body is not application/json. Bloomreach: enqueue_failed."),
    "429": {
      ...error("rate_limited: over the account's rate limit. queue_full: the queue is over its high-water mark. too_many_failures: this address failed authentication too often. Bloomreach retries later."),
      headers: retryAfter,
    },
    "503": {
      ...error("storage_unavailable: the database refuses writes. shutting_down: the gateway is stopping. internal: an unexpected error. Never a plain 500. Bloomreach retries later."),
      headers: retryAfter,
    },
  };
}

export function openApiDocument(o: OpenApiOptions): Record<string, unknown> {
  const send = (channel: "mms" | "sms", summary: string) => ({
    post: {
      operationId: `send${channel.toUpperCase()}`,
      summary,
      security: [{ chanHeaders: [] }],
      requestBody: { required: true, content: json({ $ref: `#/components/schemas/Send${channel.toUpperCase()}` }) },
      responses: sendResponses(o),
    },
  });
  return {
    openapi: "3.1.0",
    info: {
      title: "mms-gateway Channel API",
      version: o.version,
      description:
        "The provider side of Bloomreach's Channel API: MMS over MM7 with an SMS fallback, and SMS over SMPP. Any answer but 200 is final for Bloomreach except 429 and 503, which it retries.",
    },
    paths: {
      "/mms": send("mms", "Send an MMS"),
      "/sms": send("sms", "Send an SMS"),
      "/verify": {
        get: {
          operationId: "verify",
          summary: "Check the integration's credentials",
          security: [{ chanHeaders: [] }],
          responses: {
            "200": { description: "The headers match an enabled account.", content: json(plain(T.Object({ status: T.Literal("ok"), account: T.String() }))) },
            "401": error("unauthorized or account_disabled: the message is shown to Bloomreach's user."),
            "429": { ...error("too_many_failures: this address failed authentication too often."), headers: retryAfter },
          },
        },
      },
    },
    webhooks: {
      deliveryReport: {
        post: {
          operationId: "deliveryReport",
          summary: "Delivery reports, posted to each message's callback_url",
          description:
            "A JSON array of one or more events (batched per callback URL and account). Delivery is at-least-once: deduplicate on event_id.",
          security: [{ callbackJwt: [] }],
          requestBody: { required: true, content: json({ type: "array", minItems: 1, items: { $ref: "#/components/schemas/DeliveryEvent" } }) },
          responses: {
            "200": { description: "Any 2xx: the events are delivered." },
            "408": { description: "Retried with exponential backoff, as are 429, every 5xx and network errors, until webhooks.max_age_hours." },
            "429": { description: "Retried later." },
            "500": { description: "Retried later (any 5xx)." },
            "400": { description: "Any other 4xx: the events are dead-lettered (kept, visible to the operator, replayable), not retried." },
          },
        },
      },
    },
    components: {
      schemas: {
        SendMMS: sendBody("mms", o),
        SendSMS: sendBody("sms", o),
        Error: errorSchema,
        DeliveryEvent: plain(DeliveryEventSchema),
      },
      securitySchemes: {
        chanHeaders: {
          type: "apiKey",
          in: "header",
          name: "Chan-Api-Key",
          description: "Every Chan-* header configured for the account must match (the names are per account; Chan-Api-Key is the usual one).",
        },
        callbackJwt: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description:
            "Authorization carries an HS256 JWT signed with the account's callback_secret, claim iat; bare by default, `Bearer ` prefixed when webhooks.bearer_prefix is set.",
        },
      },
    },
  };
}

export function openApi(o: OpenApiOptions) {
  const body = `${JSON.stringify(openApiDocument(o), null, 2)}\n`;
  return new Elysia({ name: "openapi" }).get("/openapi.json", () => new Response(body, { headers: { "content-type": "application/json" } }));
}
