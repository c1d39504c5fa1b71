package x402

import (
	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// CAIP-2 ids of the Bitcoin networks: "bip122:" and the first 16 bytes of
// the genesis block hash in hex. Mainnet and testnet are those of the
// Lightning proposal (x402 PR #1311); signet and regtest follow the same
// rule.
const (
	NetworkMainnet = "bip122:000000000019d6689c085ae165831e93"
	NetworkTestnet = "bip122:000000000933ea01ad0ee984209779ba"
	NetworkSignet  = "bip122:00000008819873e925422c1ff0f99f7c"
	NetworkRegtest = "bip122:0f9188f13cb7b2c71f2a335e3a4fc328"
)

// NetworkID returns the CAIP-2 id of a Bitcoin network named as lnd names
// it: "mainnet", "testnet", "signet" or "regtest".
func NetworkID(name string) (string, error) {
	switch name {
	case "mainnet":
		return NetworkMainnet, nil
	case "testnet":
		return NetworkTestnet, nil
	case "signet":
		return NetworkSignet, nil
	case "regtest":
		return NetworkRegtest, nil
	}
	return "", errdetail.New(ErrInvalidParameter, "unknown network "+errdetail.Quote(name))
}

// NetworkName returns lnd's name of the network with the CAIP-2 id, or
// "" for an id this package does not know.
func NetworkName(id string) string {
	switch id {
	case NetworkMainnet:
		return "mainnet"
	case NetworkTestnet:
		return "testnet"
	case NetworkSignet:
		return "signet"
	case NetworkRegtest:
		return "regtest"
	}
	return ""
}

func knownNetwork(id string) bool { return NetworkName(id) != "" }
