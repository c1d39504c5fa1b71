// Pays a caddy-lightning paywall in the Payment scheme's Lightning charge
// (fetchWithMpp, and fetch402 where the charge is the first offer) and in
// x402 (fetchWithX402) with Alby's @getalby/lightning-tools, a library this
// project did not write, and bob's lnd as the wallet; then presents each
// single-use credential again. Run by e2e/dialects' Go tests:
//
//	PAYWALL_URL=http://127.0.0.1:PORT/api/x (offers l402 charge x402) \
//	MPP_URL=http://127.0.0.1:PORT/mpp/x (offers charge l402 x402) \
//	BOB_REST=127.0.0.1:PORT BOB_MACAROON_HEX=... BOB_TLS_CERT=/path/tls.cert \
//	node dialects.mjs
//
// It prints one JSON object with what each step saw, and exits non-zero on
// any error.
import { fetch402, fetchWithMpp, fetchWithX402 } from "@getalby/lightning-tools/402";
import { env, paid, wallet } from "./wallet.mjs";

const url = env("PAYWALL_URL");
const mppURL = env("MPP_URL");

// step runs one paying call and the same credential presented again (the
// library then sends it and never pays, even on a 402).
async function step(call, target) {
  const resp = await call(target, {}, { wallet, maxAmount: 1000 });
  const out = {
    status: resp.status,
    body: await resp.text(),
    paid: resp.payment?.paid ?? false,
    amountSat: resp.payment?.amountSat ?? 0,
    preimage: resp.payment?.preimage ?? "",
    credentialHeader: resp.payment?.credentials?.header ?? "",
    credential: resp.payment?.credentials?.value ?? "",
    receipt: resp.headers.get("payment-receipt") ?? "",
    paymentResponse: resp.headers.get("payment-response") ?? "",
  };
  if (resp.payment?.credentials) {
    const again = await call(target, {}, { wallet, credentials: resp.payment.credentials });
    out.replay = { status: again.status, body: await again.text() };
  }
  return out;
}

const first = await fetch(url, { headers: { Accept: "application/json" } });
const out = {
  challenge: {
    status: first.status,
    wwwAuthenticate: first.headers.get("www-authenticate"),
    paymentRequired: first.headers.get("payment-required") ?? "",
  },
};
await first.text();

out.fetchWithMpp = await step(fetchWithMpp, mppURL);
out.fetch402Mpp = await step(fetch402, mppURL);
out.fetchWithX402 = await step(fetchWithX402, url);
out.fetch402 = await step(fetch402, url);
out.payments = paid.length;
process.stdout.write(JSON.stringify(out) + "\n");
