package lightning

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/lightningpb"
)

// grpcClient is a gRPC client, over h2c, for the Caddy serving api (a
// startAPI URL); the connection closes at the end of the test.
func grpcClient(t *testing.T, api string) lightningpb.LightningClient {
	t.Helper()
	target := strings.TrimSuffix(strings.TrimPrefix(api, "http://"), "/v1/lightning/")
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return lightningpb.NewLightningClient(conn)
}

func TestGRPC(t *testing.T) {
	api, node := startAPI(t, "{\n\t\tmax_payment 1000\n\t}")
	client := grpcClient(t, api)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	gen, err := client.GenerateInvoice(ctx, &lightningpb.GenerateInvoiceRequest{Amount: 42, Memo: "grpc"})
	if err != nil {
		t.Fatalf("GenerateInvoice: %v", err)
	}
	check, err := client.CheckInvoice(ctx, &lightningpb.CheckInvoiceRequest{Invoice: gen.Invoice})
	if err != nil || check.Paid {
		t.Fatalf("CheckInvoice before payment = %v, %v; want unpaid", check, err)
	}
	if err := node.Settle(paymentHash(t, gen.Invoice)); err != nil {
		t.Fatal(err)
	}
	check, err = client.CheckInvoice(ctx, &lightningpb.CheckInvoiceRequest{Invoice: gen.Invoice})
	if err != nil || !check.Paid {
		t.Fatalf("CheckInvoice after payment = %v, %v; want paid", check, err)
	}

	invoice, want := node.NewPayableInvoice(100)
	pay, err := client.PayInvoice(ctx, &lightningpb.PayInvoiceRequest{Invoice: invoice})
	if err != nil || pay.Preimage != hex.EncodeToString(want[:]) {
		t.Fatalf("PayInvoice = %v, %v; want preimage %x", pay, err, want)
	}

	ks, err := client.Keysend(ctx, &lightningpb.KeysendRequest{Pubkey: node.PeerPubkey(), Amount: 3})
	if err != nil {
		t.Fatalf("Keysend: %v", err)
	}
	raw, _ := hex.DecodeString(ks.Preimage)
	if len(raw) != 32 || sha256.Sum256(raw) == [32]byte{} {
		t.Fatalf("Keysend preimage %q", ks.Preimage)
	}

	_, err = client.GenerateInvoice(ctx, &lightningpb.GenerateInvoiceRequest{Amount: -1})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("GenerateInvoice(-1) error = %v, want InvalidArgument", err)
	}
	_, err = client.PayInvoice(ctx, &lightningpb.PayInvoiceRequest{Invoice: "nonsense"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("PayInvoice(nonsense) error = %v, want InvalidArgument", err)
	}
}
