package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// Proxies are the address ranges whose forwarded headers (X-Forwarded-For,
// X-Real-IP, Forwarded) the gateway believes (TRUSTED_PROXIES, comma-separated
// CIDRs or bare addresses; default none, so the peer's own address counts).
type Proxies struct {
	Prefixes []netip.Prefix
	err      error
}

// Validate reports a TRUSTED_PROXIES entry that is not a CIDR or an address.
func (p Proxies) Validate() error { return p.err }

// ParseProxies parses a TRUSTED_PROXIES value.
func ParseProxies(v string) Proxies {
	var p Proxies
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return Proxies{err: fmt.Errorf("TRUSTED_PROXIES: %q is not a CIDR or an IP address", s)}
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		p.Prefixes = append(p.Prefixes, pfx.Masked())
	}
	return p
}
