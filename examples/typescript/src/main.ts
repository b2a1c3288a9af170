// A partner's first hour with Shoal, through a client generated from
// openapi.yaml: an admin logs in and takes on a rep, a lead lands in a pool,
// the rep claims it and finds it among his leads, and the partner's own
// endpoint receives the signed webhooks of it. Every call is typed by the
// contract (src/schema.d.ts, made by `npm run gen`), so a change to the
// spec that breaks a client breaks this build; every answer is checked, so
// a server that stops keeping the contract breaks the run.
//
// Environment: SHOAL_URL (default http://127.0.0.1:8080), SHOAL_ADMIN_EMAIL
// and SHOAL_ADMIN_PASSWORD (an existing admin). The webhook receiver listens
// on 127.0.0.1, so the server must run with SHOAL_WEBHOOK_ALLOW_PRIVATE=1.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.js";
import { verifyShoalSignature } from "./verify.js";

type Problem = components["schemas"]["Problem"];
type Event = components["schemas"]["Event"];

const baseUrl = process.env.SHOAL_URL ?? "http://127.0.0.1:8080";
const adminEmail = mustEnv("SHOAL_ADMIN_EMAIL");
const adminPassword = mustEnv("SHOAL_ADMIN_PASSWORD");

function mustEnv(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
}

// client returns a typed client that sends token on every request.
function client(token?: string) {
  const c = createClient<paths>({ baseUrl });
  if (token) {
    const auth: Middleware = {
      onRequest({ request }) {
        request.headers.set("Authorization", `Bearer ${token}`);
        return request;
      },
    };
    c.use(auth);
  }
  return c;
}

// ok unwraps an openapi-fetch answer, failing with the problem's code and
// detail (RFC 9457) when the server refused.
function ok<T>(what: string, r: { data?: T; error?: unknown; response: Response }): T {
  if (r.error !== undefined || r.data === undefined) {
    const p = r.error as Problem | undefined;
    throw new Error(`${what}: HTTP ${r.response.status} ${p?.code ?? ""} ${p?.detail ?? ""}`);
  }
  return r.data;
}

function check(cond: boolean, msg: string): void {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

async function login(email: string, password: string): Promise<string> {
  const r = await client().POST("/v1/auth/login", { body: { email, password } });
  return ok("login", r).accessToken;
}

// A delivery as the receiver got it: the raw body is what the signature
// covers, so it is kept as received and parsed only after verifying.
type Received = { headers: IncomingHttpHeaders; rawBody: Buffer; event: Event; verified: boolean; reason: string };

// receiver is the partner's webhook endpoint: it verifies every delivery
// (answering 401 to a bad signature, so that Shoal would retry it) and
// answers 200 at once; the work on an event belongs in a queue, after the
// answer.
function receiver(secret: () => string) {
  const got: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const rawBody = Buffer.concat(chunks);
      const v = verifyShoalSignature(secret(), req.headers, rawBody);
      let event: Event;
      try {
        event = JSON.parse(rawBody.toString("utf8")) as Event;
      } catch {
        res.writeHead(400).end("not JSON");
        return;
      }
      got.push({ headers: req.headers, rawBody, event, verified: v.ok, reason: v.ok ? "" : v.reason });
      if (req.method !== "POST" || req.url !== "/shoal" || !v.ok) {
        res.writeHead(v.ok ? 404 : 401).end(v.ok ? "wrong endpoint" : "bad signature");
        return;
      }
      res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
    });
  });
  return {
    got,
    listen: () => new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port))),
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

// waitFor polls find until it returns something, or fails after timeoutMs
// saying what it waited for.
async function waitFor<T>(what: string, find: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await find();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// checkDelivery checks what the receiver got for one event: a valid
// signature, headers that match the body, and that a tampered body, a
// stale timestamp or another secret are refused.
function checkDelivery(d: Received, secret: string, type: string): void {
  check(d.verified, `the ${type} delivery's signature verifies (${d.reason})`);
  const h = d.headers;
  check(h["shoal-event-id"] === d.event.id, `Shoal-Event-Id ${String(h["shoal-event-id"])} is the body's id ${d.event.id}`);
  check(h["shoal-event-type"] === d.event.type && d.event.type === type, `Shoal-Event-Type ${String(h["shoal-event-type"])} is the body's type ${d.event.type}`);
  check(typeof h["shoal-delivery-id"] === "string" && h["shoal-delivery-id"] !== "", "a Shoal-Delivery-Id is sent");
  check(h["content-type"]?.startsWith("application/json") === true, `the body is JSON (${String(h["content-type"])})`);
  const tampered = Buffer.from(d.rawBody.toString("utf8").replace(d.event.id, d.event.id.replace(/.$/, (c) => (c === "0" ? "1" : "0"))));
  check(!tampered.equals(d.rawBody) && !verifyShoalSignature(secret, h, tampered).ok, "a tampered body fails verification");
  const ts = Number(h["shoal-timestamp"]);
  check(!verifyShoalSignature(secret, h, d.rawBody, ts + 301).ok, "a delivery more than 5 minutes old fails verification");
  check(!verifyShoalSignature(`${secret}x`, h, d.rawBody).ok, "another secret fails verification");
}

async function main(): Promise<void> {
  const run = Date.now().toString(36);
  const admin = client(await login(adminEmail, adminPassword));
  console.log(`logged in as ${adminEmail}`);

  // A team, a rep in it, and a lead pool open to the team.
  const team = ok("createTeam", await admin.POST("/v1/teams", { body: { name: `华东一组 ${run}` } }));
  const repEmail = `rep-${run}@example.com`;
  const repPassword = `example-${run}-passphrase`;
  const rep = ok(
    "createUser",
    await admin.POST("/v1/users", {
      body: { email: repEmail, name: "李娜", role: "rep", teamId: team.id, password: repPassword },
    }),
  );
  const pool = ok(
    "createPool",
    await admin.POST("/v1/pools", {
      body: { kind: "lead", name: `华东线索池 ${run}`, memberTeamIds: [team.id], idleDays: 15 },
    }),
  );
  console.log(`team ${team.id}, rep ${rep.id}, pool ${pool.id}`);

  // The partner's endpoint, and a webhook for the leads' lifecycle. The
  // secret is in the answer that creates the webhook, and never again.
  let secret = "";
  const hook = receiver(() => secret);
  const port = await hook.listen();
  const webhook = ok(
    "createWebhook",
    await admin.POST("/v1/webhooks", {
      body: { url: `http://127.0.0.1:${port}/shoal`, eventTypes: ["lead.created", "lead.claimed"], description: `example receiver ${run}` },
    }),
  );
  check(typeof webhook.secret === "string" && webhook.secret.startsWith("whsec_"), "createWebhook answers the signing secret once");
  secret = webhook.secret ?? "";
  check(webhook.active, "a new webhook is active");
  console.log(`webhook ${webhook.id} sends lead.created and lead.claimed to 127.0.0.1:${port}`);

  // A lead from a web form lands in the pool, unowned. The form's server
  // sends an Idempotency-Key, so that retrying after a lost answer cannot
  // create the lead twice.
  const body = { name: "王先生", company: "苏州恒达机械有限公司", phone: `138${String(Date.now()).slice(-8)}`, source: "官网表单", poolId: pool.id };
  const key = `form-${run}`;
  const created = await admin.POST("/v1/leads", { body, params: { header: { "Idempotency-Key": key } } });
  const lead = ok("createLead", created);
  check(created.response.status === 201, `createLead answered ${created.response.status}`);
  check(!lead.ownerId, "a lead created into a pool by an admin is unowned");
  console.log(`lead ${lead.id} is in pool ${lead.poolId}`);
  const retried = await admin.POST("/v1/leads", { body, params: { header: { "Idempotency-Key": key } } });
  check(
    retried.response.status === 201 && ok("createLead retry", retried).id === lead.id && retried.response.headers.get("Idempotent-Replayed") === "true",
    "a retry with the same Idempotency-Key replays the first answer",
  );
  console.log(`a retry with the same Idempotency-Key replays it (Idempotent-Replayed: true)`);

  // The rep claims it.
  const repClient = client(await login(repEmail, repPassword));
  const claimed = await repClient.POST("/v1/leads/{id}/claim", { params: { path: { id: lead.id } } });
  const owned = ok("claimLead", claimed);
  check(claimed.response.status === 200, `claimLead answered ${claimed.response.status}`);
  check("ownerId" in owned && owned.ownerId === rep.id, "the rep owns the lead after claiming it");
  console.log(`rep claimed lead ${lead.id}`);

  // Claiming it again is refused with a stable code an app can show.
  const again = await repClient.POST("/v1/leads/{id}/claim", { params: { path: { id: lead.id } } });
  check(again.response.status === 409, `a second claim answered ${again.response.status}`);
  console.log(`a second claim is refused: ${(again.error as Problem).code}`);

  // He finds it among his leads, by a substring of the company name.
  // listLeads also answers CSV and XLSX (by Accept), so the generated type
  // of its 200 is JSON or a file: ask for JSON and narrow.
  const mine = ok(
    "listLeads",
    await repClient.GET("/v1/leads", {
      params: { query: { owner: "me", q: "恒达" } },
      headers: { Accept: "application/json" },
    }),
  );
  if (typeof mine === "string") throw new Error("listLeads answered a file, not JSON");
  check(mine.items.some((l) => l.id === lead.id), "the claimed lead is listed for its owner");
  console.log(`listLeads owner=me q=恒达 finds it (${mine.items.length} item(s))`);

  // The webhooks of that lead reach the receiver within seconds (the
  // server dispatches new events every second), signed, in the lead's
  // order: created, then claimed.
  const ofLead = (type: string) => hook.got.find((d) => d.event.type === type && d.event.subject.kind === "lead" && d.event.subject.id === lead.id);
  const createdHook = await waitFor(`the lead.created webhook of lead ${lead.id}`, () => ofLead("lead.created"));
  checkDelivery(createdHook, secret, "lead.created");
  console.log(`received lead.created ${createdHook.event.id} for lead ${lead.id}: signature verified, a tampered body is refused`);
  const claimedHook = await waitFor(`the lead.claimed webhook of lead ${lead.id}`, () => ofLead("lead.claimed"));
  checkDelivery(claimedHook, secret, "lead.claimed");
  check(hook.got.indexOf(claimedHook) > hook.got.indexOf(createdHook), "lead.claimed arrives after lead.created");
  check(claimedHook.event.actor.type === "user" && claimedHook.event.actor.id === rep.id, "lead.claimed names the rep as its actor");
  console.log(`received lead.claimed ${claimedHook.event.id} after it, signature verified`);

  // Shoal's side of it: the delivery is delivered, with the 200 it got.
  const delivered = await waitFor("listWebhookDeliveries to show the lead.created delivery delivered", async () => {
    const page = ok("listWebhookDeliveries", await admin.GET("/v1/webhooks/{id}/deliveries", { params: { path: { id: webhook.id } } }));
    const d = page.items.find((x) => x.eventId === createdHook.event.id);
    return d?.status === "delivered" ? d : undefined;
  });
  check(delivered.id === createdHook.headers["shoal-delivery-id"], "the delivery's id is the Shoal-Delivery-Id received");
  check(delivered.eventType === "lead.created" && delivered.subject.id === lead.id && delivered.reason === "event", "the delivery is the lead's lead.created event");
  check(
    delivered.attempts.some((a) => a.statusCode !== undefined && a.statusCode >= 200 && a.statusCode < 300),
    `the delivery has an attempt answered 2xx (${JSON.stringify(delivered.attempts)})`,
  );
  console.log(`listWebhookDeliveries: ${delivered.id} delivered after ${delivered.attemptCount} attempt(s)`);

  // A ping checks the set-up end to end, whatever the webhook's eventTypes.
  const pinged = ok("pingWebhook", await admin.POST("/v1/webhooks/{id}/ping", { params: { path: { id: webhook.id } } }));
  check(pinged.reason === "ping" && pinged.eventType === "webhook.pinged", "pingWebhook queues a ping delivery");
  const pingHook = await waitFor("the webhook.pinged delivery", () => hook.got.find((d) => d.headers["shoal-delivery-id"] === pinged.id));
  checkDelivery(pingHook, secret, "webhook.pinged");
  check(pingHook.event.subject.kind === "webhook" && pingHook.event.subject.id === webhook.id, "the ping's subject is the webhook");
  console.log(`pingWebhook: the receiver got webhook.pinged ${pingHook.event.id}, signature verified`);
  const refused = hook.got.filter((d) => !d.verified);
  check(refused.length === 0, `every delivery verified (${refused.map((d) => d.reason).join("; ")})`);
  await hook.close();
  console.log("ok");
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
