package lightning

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/lightningcaddy/caddy-lightning/lnd"
)

// permissionCheckTimeout bounds the startup check of the macaroon.
const permissionCheckTimeout = 30 * time.Second

// nodeUses is what the config's handlers use the node for, as they tell
// the app in Provision (paywalls are in App.paywalls).
type nodeUses struct {
	mu       sync.Mutex
	api      bool // a lightning handler: generateinvoice, checkinvoice
	payments bool // a lightning handler with max_payment: payinvoice, keysend
}

// useAPI records a lightning handler, which can pay if payments is set.
func (a *App) useAPI(payments bool) {
	a.uses.mu.Lock()
	defer a.uses.mu.Unlock()
	a.uses.api = true
	a.uses.payments = a.uses.payments || payments
}

// nodeUse is one use of the node and the lnd permissions it needs (the
// README's table lists the same).
type nodeUse struct {
	name   string
	needs  []lnd.Permission
	level  zapcore.Level // of the log line when a permission is missing
	effect string        // what fails without them
}

// configuredUses lists what this config uses the node for.
func (a *App) configuredUses() []nodeUse {
	a.paywalls.mu.Lock()
	paywalls := len(a.paywalls.list) > 0
	sessions := slices.ContainsFunc(a.paywalls.list, func(p *Paywall) bool { return p.Session != nil })
	a.paywalls.mu.Unlock()
	a.uses.mu.Lock()
	api, payments := a.uses.api, a.uses.payments
	a.uses.mu.Unlock()

	var uses []nodeUse
	if sessions {
		uses = append(uses, nodeUse{"session refunds", []lnd.Permission{lnd.OffchainWrite, lnd.OffchainRead, lnd.InfoRead},
			zapcore.ErrorLevel, "closed sessions are not refunded (the refunds stay owed and are tried again)"})
	}
	if paywalls {
		uses = append(uses, nodeUse{"paywall", []lnd.Permission{lnd.InvoicesWrite, lnd.InvoicesRead}, zapcore.ErrorLevel,
			"unpaid requests get 503 instead of an invoice, and credentials without a preimage are never admitted"})
	}
	if api {
		uses = append(uses,
			nodeUse{"generateinvoice", []lnd.Permission{lnd.InvoicesWrite}, zapcore.ErrorLevel, "generateinvoice calls fail"},
			nodeUse{"checkinvoice", []lnd.Permission{lnd.InvoicesRead}, zapcore.ErrorLevel, "checkinvoice calls fail"})
	}
	if (paywalls || api) && (a.RouteHints == "" || a.RouteHints == string(lnd.RouteHintsAuto)) {
		uses = append(uses, nodeUse{"route_hints auto", []lnd.Permission{lnd.OffchainRead}, zapcore.WarnLevel,
			"it cannot see whether the public channels can receive an invoice's amount, so every invoice " +
				"carries hints for the node's private channels, if it has any, as with route_hints always"})
	}
	if payments {
		uses = append(uses, nodeUse{"payinvoice and keysend", []lnd.Permission{lnd.OffchainWrite, lnd.OffchainRead, lnd.InfoRead},
			zapcore.ErrorLevel, "payments fail"})
	}
	return append(uses, nodeUse{"admin status", []lnd.Permission{lnd.InfoRead}, zapcore.WarnLevel,
		"/lightning/status shows the node's readiness but not its key, alias, network and height"})
}

// checkPermissions asks the node what the macaroon allows and logs, for
// each use of the node in this config, the permissions it lacks. It runs
// in the background from Start and never stops Caddy from starting.
func (a *App) checkPermissions(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, permissionCheckTimeout)
	defer cancel()
	grants, err := a.client.Grants(ctx)
	if err != nil {
		a.logger.Error("cannot check the lnd macaroon's permissions", zap.Error(err))
		return
	}
	source := "lnd (CheckMacaroonPermissions)"
	if !grants.FromNode {
		source = fmt.Sprintf("the macaroon's identifier, caveats unchecked (%v)", grants.NodeError)
	}
	var all, missingAny []lnd.Permission
	var ok []string
	for _, use := range a.configuredUses() {
		all = append(all, use.needs...)
		missing := grants.Missing(use.needs...)
		if len(missing) == 0 {
			ok = append(ok, use.name)
			continue
		}
		missingAny = append(missingAny, missing...)
		a.logger.Log(use.level, fmt.Sprintf("%s: the lnd macaroon lacks %s: %s", use.name, joinPermissions(missing), use.effect),
			zap.String("use", use.name), zap.Strings("missing", permissionStrings(missing)), zap.String("source", source))
	}
	fields := []zap.Field{zap.String("source", source), zap.Strings("permitted", ok)}
	if len(missingAny) > 0 {
		fields = append(fields, zap.String("bake", "lncli bakemacaroon "+joinPermissions(all)))
	}
	a.logger.Info("lnd macaroon permissions checked", fields...)
}

// joinPermissions lists permissions once each, sorted, space-separated.
func joinPermissions(perms []lnd.Permission) string {
	return strings.Join(permissionStrings(perms), " ")
}

func permissionStrings(perms []lnd.Permission) []string {
	var s []string
	for _, p := range perms {
		s = append(s, string(p))
	}
	slices.Sort(s)
	return slices.Compact(s)
}
