package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// ANSI colour codes, used only when stdout is a terminal.
const (
	bold   = "1"
	faint  = "2"
	red    = "31"
	green  = "32"
	yellow = "33"
	cyan   = "36"
)

// Limits of what is printed of a body.
const (
	maxBodyLines  = 12
	maxLineRunes  = 160
	maxStringLen  = 40  // longer JSON strings and header parameters are shortened
	maxOneLineLen = 100 // longer JSON is indented
)

// printer writes the walk-through, with colours only on a terminal (and
// unless NO_COLOR is set).
type printer struct {
	w     io.Writer
	color bool
}

func newPrinter(f *os.File) *printer {
	color := false
	if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		color = os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	}
	return &printer{w: f, color: color}
}

// paint colours s with an ANSI code when colours are on.
func (p *printer) paint(code, s string) string {
	if !p.color || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// line prints one formatted line.
func (p *printer) line(format string, args ...any) {
	fmt.Fprintf(p.w, format+"\n", args...)
}

// title prints a section heading.
func (p *printer) title(s string) {
	p.line("\n%s", p.paint(bold, "━━ "+s+" ━━"))
}

// duration formats d for people: "0.4 ms", "850 ms", "2.4 s".
func (p *printer) duration(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

// stepStart prints a step's heading and explanation.
func (p *printer) stepStart(s *step) {
	p.line("\n%s", p.paint(bold, s.id+". "+s.title))
	for _, l := range strings.Split(s.about, "\n") {
		p.line("   %s", p.paint(faint, l))
	}
}

// stepEnd prints a step's outcome: ✓ and its summary, or ✗ and the error.
func (p *printer) stepEnd(s *step, summary string, err error, took time.Duration) {
	t := p.paint(faint, "("+p.duration(took)+")")
	if err != nil {
		p.line("   %s %s %s\n     %s", p.paint(red, "✗"), p.paint(red, s.id+". failed"), t, indentRest(err.Error(), "     "))
		return
	}
	p.line("   %s %s %s", p.paint(green, "✓"), s.id+". "+summary, t)
}

// stepSkipped prints a step that could not run.
func (p *printer) stepSkipped(s *step, why string) {
	p.line("\n%s\n   %s %s", p.paint(bold, s.id+". "+s.title), p.paint(yellow, "–"), "skipped: "+why)
}

// note prints a fact the demo checked or learned, outside HTTP.
func (p *printer) note(format string, args ...any) {
	p.line("   %s %s", p.paint(cyan, "·"), fmt.Sprintf(format, args...))
}

// request prints an HTTP request: method, URL, the headers the demo set,
// and the body.
func (p *printer) request(method, url string, header http.Header, body []byte) {
	p.line("   %s %s %s", p.paint(cyan, "→"), p.paint(bold, method), url)
	p.headers(header, nil)
	p.body(header.Get("Content-Type"), body)
}

// shownResponseHeaders are the response headers worth reading in the demo.
var shownResponseHeaders = []string{"Content-Type", "WWW-Authenticate", "PAYMENT-REQUIRED", "Payment-Receipt", "PAYMENT-RESPONSE", "Retry-After", "Allow"}

// response prints an HTTP response: status, relevant headers and the body.
func (p *printer) response(status int, header http.Header, body []byte, took time.Duration) {
	code := green
	if status >= 400 {
		code = yellow
	}
	p.line("   %s %s %s", p.paint(cyan, "←"), p.paint(code, fmt.Sprintf("%d %s", status, http.StatusText(status))),
		p.paint(faint, p.duration(took)))
	p.headers(header, shownResponseHeaders)
	p.body(header.Get("Content-Type"), body)
}

// grpcCall prints a gRPC request; req and resp are protojson text.
func (p *printer) grpcCall(target, method string, req []byte) {
	p.line("   %s %s %s %s", p.paint(cyan, "→"), p.paint(bold, "gRPC"), method, p.paint(faint, "(h2c, "+target+")"))
	p.body("application/json", req)
}

// grpcReply prints a gRPC answer.
func (p *printer) grpcReply(code string, resp []byte, took time.Duration) {
	p.line("   %s %s %s", p.paint(cyan, "←"), p.paint(green, code), p.paint(faint, p.duration(took)))
	p.body("application/json", resp)
}

// headers prints the headers named in only (all if nil), in that order,
// with long parameters shortened.
func (p *printer) headers(h http.Header, only []string) {
	names := only
	if names == nil {
		names = slices.Sorted(maps.Keys(h))
	}
	for _, name := range names {
		for _, v := range h.Values(name) {
			p.line("     %s %s", p.paint(faint, displayName(name)+":"), shortenWords(v))
		}
	}
}

// body prints a body: JSON on one line if short, else indented; text by
// lines; anything else as a size.
func (p *printer) body(contentType string, body []byte) {
	if len(body) == 0 {
		return
	}
	var lines []string
	switch {
	case strings.HasPrefix(contentType, "application/json"):
		lines = formatJSON(body)
	case strings.HasPrefix(contentType, "text/plain"):
		lines = strings.Split(strings.TrimRight(string(body), "\n"), "\n")
	default:
		lines = []string{fmt.Sprintf("(%d bytes of %s)", len(body), contentType)}
	}
	if len(lines) > maxBodyLines {
		lines = append(lines[:maxBodyLines], fmt.Sprintf("… (%d more lines)", len(lines)-maxBodyLines))
	}
	for _, l := range lines {
		p.line("     %s", shortenRunes(l, maxLineRunes))
	}
}

// displayName spells a header name as specifications do.
func displayName(name string) string {
	if strings.EqualFold(name, "WWW-Authenticate") {
		return "WWW-Authenticate"
	}
	return http.CanonicalHeaderKey(name)
}

// jsonString matches a JSON string literal.
var jsonString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// formatJSON renders a JSON body readably: `{"a": 1, "b": "x"}` when short,
// indented otherwise, with long strings shortened. Invalid JSON is returned
// as text.
func formatJSON(body []byte) []string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, body); err != nil {
		return strings.Split(strings.TrimSpace(string(body)), "\n")
	}
	if one := spacedJSON(buf.String()); utf8.RuneCountInString(one) <= maxOneLineLen {
		return []string{one}
	}
	buf.Reset()
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		return strings.Split(strings.TrimSpace(string(body)), "\n")
	}
	return strings.Split(jsonString.ReplaceAllStringFunc(strings.TrimSpace(buf.String()), shortenLiteral), "\n")
}

// spacedJSON adds a space after the colons and commas of compact JSON
// (outside strings) and shortens long strings.
func spacedJSON(compact string) string {
	punct := strings.NewReplacer(":", ": ", ",", ", ")
	var b strings.Builder
	last := 0
	for _, loc := range jsonString.FindAllStringIndex(compact, -1) {
		b.WriteString(punct.Replace(compact[last:loc[0]]))
		b.WriteString(shortenLiteral(compact[loc[0]:loc[1]]))
		last = loc[1]
	}
	b.WriteString(punct.Replace(compact[last:]))
	return b.String()
}

// shortenLiteral shortens a quoted string without spaces to its start and
// end: the invoices and tokens of the demo are long and alike. Text, such
// as an error message, is kept.
func shortenLiteral(lit string) string {
	inner := []rune(lit[1 : len(lit)-1])
	if len(inner) <= maxStringLen || strings.Contains(lit, " ") {
		return lit
	}
	return `"` + string(inner[:maxStringLen-14]) + "…" + string(inner[len(inner)-12:]) + `"`
}

// longWord matches a long run of base64, hex or bech32 text in a header.
var longWord = regexp.MustCompile(`[A-Za-z0-9+/=_-]{41,}`)

// shortenWords shortens the tokens, invoices and preimages in a header
// value.
func shortenWords(v string) string {
	return longWord.ReplaceAllStringFunc(v, short)
}

// short shortens a long value such as a preimage or an invoice for notes.
func short(s string) string {
	return strings.Trim(shortenLiteral(`"`+s+`"`), `"`)
}

// shortenRunes cuts s to n runes.
func shortenRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// indentRest indents every line of s but the first.
func indentRest(s, indent string) string {
	return strings.ReplaceAll(s, "\n", "\n"+indent)
}
