package l402_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/lightningcaddy/caddy-lightning/l402"
)

// The paywall side and the client side of one purchase.
func Example() {
	keys, err := l402.NewKeyring(l402.NewRootKey()) // newest key first, then older ones
	if err != nil {
		panic(err)
	}

	// Server: an unauthenticated request gets 402 with a fresh token bound
	// to the invoice's payment hash. (The invoice comes from the node.)
	preimage := [32]byte{1, 2, 3} // known to the node only
	paymentHash := sha256.Sum256(preimage[:])
	invoice := "lnbc1500n1examplexinvoice"
	token, _, err := keys.Mint(paymentHash,
		l402.ServicesCaveat(l402.Service{Name: "api"}),
		l402.PriceCaveat("api", 1500),
		l402.ValidUntilCaveat("api", time.Now().Add(24*time.Hour)),
	)
	if err != nil {
		panic(err)
	}
	challenges, _ := l402.ChallengeHeaders(token, invoice) // each a WWW-Authenticate value

	// Client: read the challenge, pay the invoice, retry with the preimage.
	c, _ := l402.ParseChallenge(challenges)
	auth, _ := l402.FormatAuthorization(c.Token, preimage)

	// Server: verify every Authorization value; no I/O.
	check := l402.Checker{Service: "api", Price: 1500}
	_, id, err := keys.Authenticate([]string{auth}, check)
	fmt.Println(err == nil, id.PaymentHash == paymentHash)

	// A browser may send the token alone; the paywall then asks its node
	// whether the invoice of id.PaymentHash is settled.
	cred, id, err := keys.Authenticate([]string{"L402 " + c.Token}, check)
	fmt.Println(errors.Is(err, l402.ErrPreimageRequired), id.PaymentHash == paymentHash, cred.HasPreimage)

	// No credentials: answer 402. Bad credentials: answer 401.
	_, _, err = keys.Authenticate(nil, check)
	fmt.Println(errors.Is(err, l402.ErrNoCredentials))
	_, _, err = keys.Authenticate([]string{auth}, l402.Checker{Service: "api", Price: 3000})
	fmt.Println(err)
	// Output:
	// true true
	// true true false
	// true
	// l402: token not valid for this price: token price 1500 sats, route price 3000 sats
}
