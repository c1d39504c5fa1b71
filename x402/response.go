package x402

import (
	"strconv"
	"time"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// SettlementResponse is the object of a PAYMENT-RESPONSE header (spec §5.3)
// with the Lightning proposal's extra member.
type SettlementResponse struct {
	// Success reports whether the payment was accepted.
	Success bool `json:"success"`
	// ErrorReason is an x402 error code (Reason*) when Success is false.
	ErrorReason string `json:"errorReason,omitempty"`
	// Payer is "anonymous" for Lightning (the payer is not known).
	Payer string `json:"payer,omitempty"`
	// Transaction is the paid invoice (PR #1311), "" on failure.
	Transaction string `json:"transaction"`
	// Network is the CAIP-2 id of the network.
	Network string `json:"network"`
	// Amount is the settled amount in millisatoshis, optional.
	Amount string `json:"amount,omitempty"`
	// Extra is the Lightning detail of a success.
	Extra *SettlementExtra `json:"extra,omitempty"`
}

// SettlementExtra is the Lightning detail of a successful settlement.
type SettlementExtra struct {
	// Invoice is the settled invoice.
	Invoice string `json:"invoice"`
	// SettledAt is the settlement time in Unix seconds.
	SettledAt int64 `json:"settledAt"`
}

// Settled returns the response to a payment whose invoice the node
// reported settled (network is a CAIP-2 id).
func Settled(network, invoice string, amountMsat int64, settledAt time.Time) SettlementResponse {
	return SettlementResponse{
		Success:     true,
		Payer:       PayToAnonymous,
		Transaction: invoice,
		Network:     network,
		Amount:      strconv.FormatInt(amountMsat, 10),
		Extra:       &SettlementExtra{Invoice: invoice, SettledAt: settledAt.Unix()},
	}
}

// Failed returns the response to a refused payment.
func Failed(network, reason string) SettlementResponse {
	return SettlementResponse{ErrorReason: reason, Network: network}
}

// Encode returns the PAYMENT-RESPONSE header value. A success needs a
// transaction and no error reason, a failure an error reason; both need a
// network. Errors are ErrInvalidParameter.
func (r SettlementResponse) Encode() (string, error) {
	if err := r.check(); err != nil {
		return "", errdetail.New(ErrInvalidParameter, err.Error())
	}
	return encodeHeader(r)
}

// DecodeSettlementResponse decodes a PAYMENT-RESPONSE header value, for
// clients and tests. Errors are ErrMalformed.
func DecodeSettlementResponse(s string) (SettlementResponse, error) {
	var r SettlementResponse
	if err := decodeHeader(s, &r); err != nil {
		return SettlementResponse{}, err
	}
	if err := r.check(); err != nil {
		return SettlementResponse{}, err
	}
	return r, nil
}

func (r *SettlementResponse) check() error {
	switch {
	case r.Network == "":
		return errdetail.New(ErrMalformed, "network is required")
	case r.Success && (r.Transaction == "" || r.ErrorReason != ""):
		return errdetail.New(ErrMalformed, "a success needs a transaction and no error reason")
	case !r.Success && r.ErrorReason == "":
		return errdetail.New(ErrMalformed, "a failure needs an error reason")
	case r.Amount != "" && !isDecimal(r.Amount):
		return errdetail.New(ErrMalformed, "amount is not a decimal string")
	}
	return nil
}
