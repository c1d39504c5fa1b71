// Pays a caddy-lightning paywall with Alby's L402 client
// (@getalby/lightning-tools), a library this project did not write, and a
// wallet that is bob's lnd over its REST API. Run by e2e/paywall's Go tests:
//
//	PAYWALL_URL=http://127.0.0.1:PORT/api/x \
//	BOB_REST=127.0.0.1:PORT BOB_MACAROON_HEX=... BOB_TLS_CERT=/path/tls.cert \
//	node interop.mjs
//
// It prints one JSON object with what each step saw, and exits non-zero on
// any error.
import { readFileSync } from "node:fs";
import https from "node:https";
import { fetch402, fetchWithL402, parseL402 } from "@getalby/lightning-tools/402";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const url = env("PAYWALL_URL");
const rest = env("BOB_REST");
const macaroon = env("BOB_MACAROON_HEX");
const ca = readFileSync(env("BOB_TLS_CERT"));

// payWithBob pays a BOLT 11 invoice through bob's lnd REST API
// (POST /v2/router/send, a stream of JSON lines with the payment's states)
// and returns the preimage in hex.
function payWithBob(invoice) {
  const body = JSON.stringify({ payment_request: invoice, timeout_seconds: 30, fee_limit_sat: "1000" });
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: rest.slice(0, rest.lastIndexOf(":")),
        port: Number(rest.slice(rest.lastIndexOf(":") + 1)),
        path: "/v2/router/send",
        method: "POST",
        ca,
        headers: {
          "Grpc-Metadata-macaroon": macaroon,
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(body),
        },
        timeout: 60_000,
      },
      (res) => {
        let buf = "";
        let done = false;
        const finish = (err, preimage) => {
          if (done) return;
          done = true;
          res.destroy();
          if (err) reject(err);
          else resolve(preimage);
        };
        res.setEncoding("utf8");
        res.on("data", (chunk) => {
          buf += chunk;
          let nl;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            const msg = JSON.parse(line);
            if (msg.error) return finish(new Error(`lnd: ${JSON.stringify(msg.error)}`));
            const p = msg.result;
            if (p && p.status === "SUCCEEDED") return finish(null, p.payment_preimage);
            if (p && p.status === "FAILED") return finish(new Error(`payment failed: ${p.failure_reason}`));
          }
        });
        res.on("end", () => finish(new Error(`lnd answered ${res.statusCode} without a final state: ${buf}`)));
        res.on("error", (e) => finish(e));
      },
    );
    req.on("timeout", () => req.destroy(new Error("lnd REST timed out")));
    req.on("error", reject);
    req.end(body);
  });
}

// The wallet the library pays with; it records what it was asked to pay.
const paid = [];
const wallet = {
  async payInvoice({ invoice }) {
    const preimage = await payWithBob(invoice);
    paid.push(invoice);
    return { preimage };
  },
};

const out = {};

// 1. The challenge as fetch (undici) hands it to the library: both
//    WWW-Authenticate headers joined into one line.
const first = await fetch(url, { headers: { Accept: "application/json" } });
const header = first.headers.get("www-authenticate");
const parsed = parseL402(header);
const body = await first.json();
out.challenge = {
  status: first.status,
  header,
  tokenMatches: parsed.token === body.token,
  invoiceMatches: parsed.invoice === body.invoice,
};

// 2. The library's whole flow: request, parse, pay through the wallet, retry.
const resp = await fetchWithL402(url, { headers: { Accept: "application/json" } }, { wallet });
out.fetchWithL402 = {
  status: resp.status,
  body: await resp.text(),
  paid: resp.payment?.paid,
  amountSat: resp.payment?.amountSat,
  preimage: resp.payment?.preimage,
  authorization: resp.payment?.credentials?.value,
};

// 3. The credential again, as the library reuses it: no new payment.
const again = await fetchWithL402(url, {}, { wallet, credentials: resp.payment.credentials });
out.reuse = { status: again.status, body: await again.text() };

// 4. The library's generic 402 client, which tells L402 from its other
//    schemes by the header, with a spending cap above the price.
const generic = await fetch402(url, {}, { wallet, maxAmount: 1000 });
out.fetch402 = { status: generic.status, body: await generic.text(), paid: generic.payment?.paid };

out.payments = paid.length;
process.stdout.write(JSON.stringify(out) + "\n");
