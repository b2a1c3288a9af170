// A partner's first hour with Shoal, through a client generated from
// openapi.yaml: an admin logs in and takes on a rep, a lead lands in a pool,
// the rep claims it and finds it among his leads. Every call is typed by the
// contract (src/schema.d.ts, made by `npm run gen`), so a change to the
// spec that breaks a client breaks this build; every answer is checked, so
// a server that stops keeping the contract breaks the run.
//
// Environment: SHOAL_URL (default http://127.0.0.1:8080), SHOAL_ADMIN_EMAIL
// and SHOAL_ADMIN_PASSWORD (an existing admin).
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Problem = components["schemas"]["Problem"];

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
  console.log("ok");
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
