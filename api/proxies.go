package api

import (
	"net"
	"net/netip"

	"github.com/labstack/echo/v4"
)

// ipExtractor believes forwarded headers only from the trusted proxies: with
// none, the client is the peer itself; with some, it is the last address in
// X-Forwarded-For that a trusted proxy did not add. Loopback, link-local and
// private peers get no trust of their own (echo's defaults grant it, which lets
// any client in a private network choose its address).
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		a := p.Addr().Unmap()
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(p.Bits(), a.BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}
