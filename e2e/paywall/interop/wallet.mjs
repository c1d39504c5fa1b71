// The wallet the interop scripts pay with: bob's lnd over its REST API
// (BOB_REST, BOB_MACAROON_HEX, BOB_TLS_CERT), recording what it paid.
import { readFileSync } from "node:fs";
import https from "node:https";

export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
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
export const paid = [];
export const wallet = {
  async payInvoice({ invoice }) {
    const preimage = await payWithBob(invoice);
    paid.push(invoice);
    return { preimage };
  },
};
