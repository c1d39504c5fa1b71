package lightning

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// resolveSecret replaces the placeholders ({env.X}, {file.X}, ...) of a
// configured secret. A secret that is configured but resolves to nothing
// (an unset environment variable, a missing or empty file) is an error
// that names the option and what was configured: it must never turn a
// check off or leave a credential empty. The value is returned as it
// resolved, untrimmed.
func resolveSecret(option, configured string) (string, error) {
	value := caddy.NewReplacer().ReplaceAll(configured, "")
	if strings.TrimSpace(value) == "" {
		return "", fmt.Errorf("%s %q resolves to an empty value: set the environment variable or file it names, or remove the option", option, configured)
	}
	return value, nil
}
