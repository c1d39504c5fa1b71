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
import { fetch402, fetchWithL402, parseL402 } from "@getalby/lightning-tools/402";
import { env, paid, wallet } from "./wallet.mjs";

const url = env("PAYWALL_URL");

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
