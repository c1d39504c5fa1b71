package lightning

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

func TestAdaptGlobalOptionAndHandler(t *testing.T) {
	caddytest.AssertAdapt(t, `{
	lightning {
		lnd {
			address 127.0.0.1:10009
			tls_cert /lnd/tls.cert
			macaroon {env.LND_MACAROON}
			timeout 5s
		}
	}
}

:8080 {
	route /v1/lightning/* {
		lightning {
			invoice_expiry 10m
			max_payment 5000
			max_fee 20
			payment_timeout 30s
		}
	}
}
`, "caddyfile", `{
	"apps": {
		"http": {
			"servers": {
				"srv0": {
					"listen": [
						":8080"
					],
					"routes": [
						{
							"match": [
								{
									"path": [
										"/v1/lightning/*"
									]
								}
							],
							"handle": [
								{
									"handler": "subroute",
									"routes": [
										{
											"handle": [
												{
													"handler": "lightning",
													"invoice_expiry": 600000000000,
													"max_fee": 20,
													"max_payment": 5000,
													"payment_timeout": 30000000000
												}
											]
										}
									]
								}
							]
						}
					]
				}
			}
		},
		"lightning": {
			"lnd": {
				"address": "127.0.0.1:10009",
				"tls_cert": "/lnd/tls.cert",
				"macaroon": "{env.LND_MACAROON}",
				"timeout": 5000000000
			}
		}
	}
}`)
}

func TestAdaptDirectiveOrder(t *testing.T) {
	// lightning sorts before respond, so a fallback respond does not
	// shadow it.
	caddytest.AssertAdapt(t, `:8080 {
	respond "fallback"
	lightning
}
`, "caddyfile", `{
	"apps": {
		"http": {
			"servers": {
				"srv0": {
					"listen": [
						":8080"
					],
					"routes": [
						{
							"handle": [
								{
									"handler": "lightning"
								},
								{
									"body": "fallback",
									"handler": "static_response"
								}
							]
						}
					]
				}
			}
		}
	}
}`)
}

func TestCaddyfileErrors(t *testing.T) {
	for _, tt := range []struct{ name, input, want string }{
		{"unknown app option", "{\n\tlightning {\n\t\tbogus\n\t}\n}\n", "unrecognized lightning option 'bogus'"},
		{"unknown lnd option", "{\n\tlightning {\n\t\tlnd {\n\t\t\tport 1\n\t\t}\n\t}\n}\n", "unrecognized lnd option 'port'"},
		{"duplicate lnd option", "{\n\tlightning {\n\t\tlnd {\n\t\t\taddress a:1\n\t\t\taddress b:1\n\t\t}\n\t}\n}\n", "address may be given only once"},
		{"lnd option without value", "{\n\tlightning {\n\t\tlnd {\n\t\t\taddress\n\t\t}\n\t}\n}\n", "wrong argument count"},
		{"bad handler duration", ":80 {\n\tlightning {\n\t\tinvoice_expiry soon\n\t}\n}\n", "not a positive duration"},
		{"negative sats", ":80 {\n\tlightning {\n\t\tmax_payment -1\n\t}\n}\n", "not an amount of satoshis"},
		{"unknown handler option", ":80 {\n\tlightning {\n\t\tmax_spend 1\n\t}\n}\n", "unrecognized lightning option 'max_spend'"},
		{"handler argument", ":80 {\n\tlightning now\n}\n", "wrong argument count"},
		{"bad IPv6 prefix", "{\n\tlightning {\n\t\tclient_ipv6_prefix 129\n\t}\n}\n", "not a number of bits from 1 to 128"},
		{"bad handler rate", ":80 {\n\tlightning {\n\t\tinvoices_per_client 0 1m\n\t}\n}\n", "not a positive number"},
		{"bad lookups rate", ":80 {\n\tpaywall 1 {\n\t\tlookups_per_client 5 never\n\t}\n}\n", "not a positive duration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := adaptCaddyfile(tt.input)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadCredentials(t *testing.T) {
	node := lndtest.Start(t)
	certPEM := node.TLSCertPEM()
	macHex := node.MacaroonHex()
	macRaw, _ := hex.DecodeString(macHex)
	dir := t.TempDir()
	hexFile := filepath.Join(dir, "mac.hex")
	if err := os.WriteFile(hexFile, []byte(macHex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_LND_MACAROON", macHex)
	t.Setenv("TEST_LND_CERT", string(certPEM))

	for _, tt := range []struct{ name, cert, mac string }{
		{"files", node.TLSCertPath(), node.MacaroonPath()},
		{"inline PEM and hex", string(certPEM), macHex},
		{"hex cert and hex file", hex.EncodeToString(certPEM), hexFile},
		{"env placeholders", "{env.TEST_LND_CERT}", "{env.TEST_LND_MACAROON}"},
		{"file placeholder with binary macaroon", node.TLSCertPath(), "{file." + node.MacaroonPath() + "}"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := (&LNDConfig{Address: node.Addr(), TLSCert: tt.cert, Macaroon: tt.mac}).clientConfig(caddy.NewReplacer())
			if err != nil {
				t.Fatal(err)
			}
			if string(cfg.Macaroon) != string(macRaw) {
				t.Errorf("macaroon = %x, want %x", cfg.Macaroon, macRaw)
			}
			if !strings.Contains(string(cfg.TLSCert), "BEGIN CERTIFICATE") {
				t.Errorf("certificate is not PEM: %.40q", cfg.TLSCert)
			}
		})
	}

	for _, tt := range []struct{ name, cert, mac, want string }{
		{"missing cert", "", macHex, "tls_cert: required"},
		{"missing macaroon", node.TLSCertPath(), "", "macaroon: required"},
		{"unreadable cert", "/nonexistent/tls.cert", macHex, "not a readable file"},
		{"unreadable macaroon", node.TLSCertPath(), "/nonexistent/admin.macaroon", "not a readable file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&LNDConfig{TLSCert: tt.cert, Macaroon: tt.mac}).clientConfig(caddy.NewReplacer())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), macHex) {
				t.Error("error leaks the macaroon")
			}
		})
	}
}
