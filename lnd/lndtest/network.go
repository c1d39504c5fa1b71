package lndtest

import (
	"fmt"

	"github.com/btcsuite/btcd/chaincfg"
)

// networkParams maps a network name, as lnd reports it in GetInfo.chains,
// to its chain parameters.
func networkParams(network string) (*chaincfg.Params, error) {
	switch network {
	case "mainnet":
		return &chaincfg.MainNetParams, nil
	case "testnet":
		return &chaincfg.TestNet3Params, nil
	case "testnet4":
		return &chaincfg.TestNet4Params, nil
	case "signet":
		return &chaincfg.SigNetParams, nil
	case "regtest":
		return &chaincfg.RegressionNetParams, nil
	case "simnet":
		return &chaincfg.SimNetParams, nil
	default:
		return nil, fmt.Errorf("unknown network %q (want mainnet, testnet, testnet4, signet, regtest or simnet)", network)
	}
}
