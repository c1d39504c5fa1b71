package api_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/lightningpb"
)

// TestGRPC calls each of the four methods through Caddy with a grpc-go
// client over h2c, with real payments both ways, and checks the codes of
// the node's and the handler's errors.
func TestGRPC(t *testing.T) {
	a := startAPI(t)
	client := grpcClient(t, a.grpcAddr)
	bob, alice := nodeClient(t, network.Bob), nodeClient(t, network.Alice)
	ctx := testContext(t)

	t.Run("GenerateInvoice and CheckInvoice", func(t *testing.T) {
		var gen *lightningpb.GenerateInvoiceResponse
		timed(t, "gRPC GenerateInvoice", func() {
			var err error
			if gen, err = client.GenerateInvoice(ctx, &lightningpb.GenerateInvoiceRequest{Amount: 777, Memo: "e2e grpc"}); err != nil {
				t.Fatalf("GenerateInvoice: %v", err)
			}
		})
		inv := decodeRegtest(t, gen.Invoice)
		if inv.MilliSat == nil || inv.MilliSat.ToSatoshis() != 777 || hex.EncodeToString(inv.Destination.SerializeCompressed()) != network.Alice.Pubkey {
			t.Fatalf("invoice for %v from %x, want 777 sat from alice", inv.MilliSat, inv.Destination.SerializeCompressed())
		}
		timed(t, "gRPC CheckInvoice (unpaid)", func() {
			check, err := client.CheckInvoice(ctx, &lightningpb.CheckInvoiceRequest{Invoice: gen.Invoice})
			if err != nil || check.Paid {
				t.Fatalf("CheckInvoice before payment = %v, %v; want unpaid", check, err)
			}
		})
		timed(t, "bob pays alice's invoice", func() {
			if _, err := network.Bob.PayInvoice(ctx, gen.Invoice); err != nil {
				t.Fatal(err)
			}
		})
		timed(t, "gRPC CheckInvoice (paid)", func() {
			check, err := client.CheckInvoice(ctx, &lightningpb.CheckInvoiceRequest{Invoice: gen.Invoice})
			if err != nil || !check.Paid {
				t.Fatalf("CheckInvoice after bob paid = %v, %v; want paid", check, err)
			}
		})
	})

	t.Run("PayInvoice", func(t *testing.T) {
		const amount = 1111
		inv := bobInvoice(t, bob, amount, "e2e grpc pay", 0)
		before := localBalance(t, alice)
		var pay *lightningpb.PayInvoiceResponse
		timed(t, "gRPC PayInvoice", func() {
			var err error
			if pay, err = client.PayInvoice(ctx, &lightningpb.PayInvoiceRequest{Invoice: inv.PaymentRequest}); err != nil {
				t.Fatalf("PayInvoice: %v", err)
			}
		})
		raw := checkPreimage(t, pay.Preimage, inv.RHash)
		if settled := waitSettled(t, bob, inv.RHash); settled.AmtPaidSat != amount || !bytes.Equal(settled.RPreimage, raw) {
			t.Errorf("bob's invoice: amt_paid_sat %d, preimage %x; want %d, %s", settled.AmtPaidSat, settled.RPreimage, amount, pay.Preimage)
		}
		fee := wantOnePayment(t, alice, inv.RHash, amount)
		waitBalanceDrop(t, alice, before, amount+fee)
	})

	t.Run("Keysend", func(t *testing.T) {
		const amount = 333
		var ks *lightningpb.KeysendResponse
		timed(t, "gRPC Keysend", func() {
			var err error
			if ks, err = client.Keysend(ctx, &lightningpb.KeysendRequest{Pubkey: network.Bob.Pubkey, Amount: amount}); err != nil {
				t.Fatalf("Keysend: %v", err)
			}
		})
		raw, err := hex.DecodeString(ks.Preimage)
		if err != nil || len(raw) != 32 {
			t.Fatalf("preimage %q is not 32 bytes of hex", ks.Preimage)
		}
		got := bobKeysendInvoice(t, bob, sha256Sum(raw))
		if !got.IsKeysend || got.Value != amount || got.State != lnrpc.Invoice_SETTLED {
			t.Errorf("bob's keysend invoice: is_keysend %t, value %d, state %s; want true, %d, SETTLED", got.IsKeysend, got.Value, got.State, amount)
		}
	})

	t.Run("errors", func(t *testing.T) {
		bobsOwn := bobInvoice(t, bob, 100, "e2e grpc bob's own", 0)
		overLimit := bobInvoice(t, bob, maxPayment+1, "e2e grpc over the limit", 0)
		noPay := grpcClient(t, a.noPayRPC)
		tests := []struct {
			name    string
			call    func() error
			code    codes.Code
			message string
		}{
			{"CheckInvoice of bob's invoice", func() error {
				_, err := client.CheckInvoice(ctx, &lightningpb.CheckInvoiceRequest{Invoice: bobsOwn.PaymentRequest})
				return err
			}, codes.NotFound, "no invoice"},
			{"PayInvoice of a mainnet invoice", func() error {
				_, err := client.PayInvoice(ctx, &lightningpb.PayInvoiceRequest{Invoice: mainnetInvoice(t, 100)})
				return err
			}, codes.InvalidArgument, "invoice is for mainnet, the node is on regtest"},
			{"Keysend to an unknown node", func() error {
				_, err := client.Keysend(ctx, &lightningpb.KeysendRequest{Pubkey: randomPubkey(t), Amount: 100})
				return err
			}, codes.FailedPrecondition, "no route"},
			{"PayInvoice over max_payment", func() error {
				_, err := client.PayInvoice(ctx, &lightningpb.PayInvoiceRequest{Invoice: overLimit.PaymentRequest})
				return err
			}, codes.PermissionDenied, "exceeds this server's max_payment of 50000"},
			{"PayInvoice without max_payment", func() error {
				_, err := noPay.PayInvoice(ctx, &lightningpb.PayInvoiceRequest{Invoice: bobsOwn.PaymentRequest})
				return err
			}, codes.PermissionDenied, "max_payment"},
			{"GenerateInvoice of 0 sat", func() error {
				_, err := client.GenerateInvoice(ctx, &lightningpb.GenerateInvoiceRequest{Amount: 0})
				return err
			}, codes.InvalidArgument, "amount must be"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var err error
				timed(t, "gRPC "+tt.name, func() { err = tt.call() })
				st, ok := status.FromError(err)
				if !ok || st.Code() != tt.code || !strings.Contains(st.Message(), tt.message) {
					t.Errorf("error = %v, want code %s with %q", err, tt.code, tt.message)
				}
			})
		}
		for _, hash := range [][]byte{bobsOwn.RHash, overLimit.RHash} {
			if pays := alicePayments(t, alice, hash); len(pays) != 0 {
				t.Errorf("alice tried %d payments to %x", len(pays), hash)
			}
		}
	})
}
