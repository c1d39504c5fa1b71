// Package errdetail gives the protocol packages (l402, payment, x402) one
// shape of error: a sentinel kind wrapped with a short, secret-free detail,
// matched with errors.Is.
package errdetail

import "strconv"

type detailError struct {
	kind   error
	detail string
}

func (e *detailError) Error() string { return e.kind.Error() + ": " + e.detail }
func (e *detailError) Unwrap() error { return e.kind }

// New returns an error of the given kind that adds detail to its text.
func New(kind error, detail string) error { return &detailError{kind: kind, detail: detail} }

// Detail returns the detail of an error made by New, else err's text.
func Detail(err error) string {
	if d, ok := err.(*detailError); ok {
		return d.detail
	}
	return err.Error()
}

// Quote renders attacker-influenced text for an error message: quoted, so
// control characters cannot reach logs, and cut to 64 bytes.
func Quote(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
