// Verifying a Shoal webhook delivery, as a receiver should (docs/webhooks.md).
// It mirrors Verify in internal/webhooks/sign.go: Shoal-Timestamp must be
// Unix seconds within the tolerance of now, and one of the comma-separated
// "v1=<hex>" entries of Shoal-Signature must be the HMAC-SHA256, keyed with
// the secret string ("whsec_…") as written, of "<timestamp>.<raw body>".
//
// Pass the raw body exactly as received (bytes or the undecoded string):
// parsing and re-serialising the JSON would change it and break the MAC.
import { createHmac, timingSafeEqual } from "node:crypto";

// Headers as node:http gives them (names lower-cased), or a Fetch Headers.
export type HeaderBag = Headers | Record<string, string | string[] | undefined>;

export type VerifyResult = { ok: true; timestamp: number } | { ok: false; reason: string };

function header(headers: HeaderBag, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const v = headers[name.toLowerCase()] ?? headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}

// verifyShoalSignature checks one delivery. nowSeconds defaults to the
// clock; toleranceSeconds (default 300) bounds how old (or how far in the
// future) the timestamp may be, so that a captured delivery cannot be
// replayed later. It never throws on bad input: it says why it refused.
export function verifyShoalSignature(
  secret: string,
  headers: HeaderBag,
  rawBody: string | Uint8Array,
  nowSeconds: number = Math.floor(Date.now() / 1000),
  toleranceSeconds = 300,
): VerifyResult {
  const tsHeader = header(headers, "Shoal-Timestamp")?.trim() ?? "";
  const sigHeader = header(headers, "Shoal-Signature") ?? "";
  if (!/^\d{1,15}$/.test(tsHeader)) return { ok: false, reason: `Shoal-Timestamp ${JSON.stringify(tsHeader)} is not Unix seconds` };
  const ts = Number(tsHeader);
  if (Math.abs(nowSeconds - ts) > toleranceSeconds) {
    return { ok: false, reason: `Shoal-Timestamp ${ts} is ${nowSeconds - ts}s from now (tolerance ${toleranceSeconds}s)` };
  }
  const want = createHmac("sha256", secret)
    .update(`${ts}.`)
    .update(typeof rawBody === "string" ? Buffer.from(rawBody, "utf8") : rawBody)
    .digest();
  for (const entry of sigHeader.split(",")) {
    const e = entry.trim();
    if (!e.startsWith("v1=")) continue; // another scheme: a later entry may match
    const hex = e.slice(3);
    if (!/^[0-9a-fA-F]{64}$/.test(hex)) continue;
    if (timingSafeEqual(Buffer.from(hex, "hex"), want)) return { ok: true, timestamp: ts };
  }
  return { ok: false, reason: "no Shoal-Signature entry matches the body and timestamp" };
}
