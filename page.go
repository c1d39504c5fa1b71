package lightning

import (
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"
)

// pageData is what the payment page shows.
type pageData struct {
	Price       int64     // sats
	Memo        string    // what is being bought (user text: escaped by the template)
	Invoice     string    // BOLT 11, e.g. "lnbcrt10u1p..."
	Token       string    // base64 L402 token (macaroon)
	PaymentHash string    // hex
	ExpiresAt   time.Time // invoice expiry
	Nonce       string    // CSP nonce of the inline <script> and <style> tags
}

//go:embed page.html
var pageHTML string

// paymentPage is the payment page template, parsed once.
var paymentPage = template.Must(template.New("page.html").Parse(pageHTML))

// qrLevel is the error correction of the invoice QR code: medium survives a
// glare spot on a phone screen and keeps a typical invoice (about 350
// characters) at version 11, 61 modules plus the quiet zone.
const qrLevel = qrcode.Medium

// qrWidth is the width of the QR code in CSS pixels, rounded down to whole
// pixels per module (at least 2); CSS shrinks it on narrow screens.
const qrWidth = 288

// pageView is the template's data: pageData plus what is derived from it.
type pageView struct {
	pageData
	Amount     string        // "2,100"
	Unit       string        // "sat" or "sats"
	URI        template.URL  // lightning:<invoice>
	QR         template.HTML // inline SVG
	ExpiresUTC string        // "2006-01-02 15:04 UTC"
	Script     pageScript    // JSON for the page's script
}

// pageScript is the data the page's script reads from its JSON block.
type pageScript struct {
	Invoice   string `json:"invoice"`
	Token     string `json:"token"`
	ExpiresIn int64  `json:"expiresIn"` // seconds from rendering; relative, so client clock skew does not matter
}

// renderPaymentPage writes the complete HTML page (the caller has already
// set status 402 and Content-Type).
func renderPaymentPage(w io.Writer, d pageData) error {
	if !isBech32ish(d.Invoice) {
		return errors.New("payment page: invoice is not a BOLT 11 string")
	}
	qr, err := invoiceQR(d.Invoice)
	if err != nil {
		return fmt.Errorf("payment page: %w", err)
	}
	unit := "sats"
	if d.Price == 1 {
		unit = "sat"
	}
	expiresIn := int64(time.Until(d.ExpiresAt).Seconds())
	if expiresIn < 0 {
		expiresIn = 0
	}
	return paymentPage.Execute(w, pageView{
		pageData: d,
		Amount:   formatThousands(d.Price),
		Unit:     unit,
		// Safe as a URL: the invoice is letters and digits only.
		URI:        template.URL("lightning:" + d.Invoice),
		QR:         qr,
		ExpiresUTC: d.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"),
		Script: pageScript{
			Invoice:   d.Invoice,
			Token:     d.Token,
			ExpiresIn: expiresIn,
		},
	})
}

// isBech32ish reports whether s is non-empty and only ASCII letters and
// digits, as every BOLT 11 invoice is.
func isBech32ish(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// invoiceQR returns an inline SVG QR code of the invoice's upper-cased
// lightning: URI, which fits the denser alphanumeric mode. The SVG has the
// 4-module quiet zone on a white background (also in dark mode) and draws
// the dark modules as one path of horizontal runs.
func invoiceQR(invoice string) (template.HTML, error) {
	q, err := qrcode.New("LIGHTNING:"+strings.ToUpper(invoice), qrLevel)
	if err != nil {
		return "", err
	}
	bm := q.Bitmap()
	n := strconv.Itoa(len(bm))
	// Whole pixels per module keep the modules even on low-DPI screens.
	px := strconv.Itoa(len(bm) * max(2, qrWidth/len(bm)))

	b := make([]byte, 0, 256+len(bm)*len(bm))
	b = append(b, `<svg class="qr-svg" width="`+px+`" height="`+px+`" viewBox="0 0 `+n+` `+n+
		`" shape-rendering="crispEdges" role="img" aria-label="QR code of the Lightning invoice">`+
		`<rect width="`+n+`" height="`+n+`" fill="#fff"/><path fill="#000" d="`...)
	for y, row := range bm {
		for x := 0; x < len(row); {
			if !row[x] {
				x++
				continue
			}
			start := x
			for x < len(row) && row[x] {
				x++
			}
			// M<x> <y>h<run>v1h-<run>z: one run of dark modules.
			b = append(b, 'M')
			b = strconv.AppendInt(b, int64(start), 10)
			b = append(b, ' ')
			b = strconv.AppendInt(b, int64(y), 10)
			b = append(b, 'h')
			b = strconv.AppendInt(b, int64(x-start), 10)
			b = append(b, "v1h-"...)
			b = strconv.AppendInt(b, int64(x-start), 10)
			b = append(b, 'z')
		}
	}
	b = append(b, `"/></svg>`...)
	return template.HTML(b), nil
}

// formatThousands formats n with commas between groups of three digits.
func formatThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
