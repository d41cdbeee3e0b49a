package config

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTrustedProxies(t *testing.T) {
	t.Setenv("TRUSTED_PROXIES", "")
	p := LoadAPI().TrustedProxies
	require.NoError(t, p.Validate())
	assert.Empty(t, p.Prefixes, "default: no proxy is trusted")

	t.Setenv("TRUSTED_PROXIES", " 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32")
	p = LoadAPI().TrustedProxies
	require.NoError(t, p.Validate())
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32")}, p.Prefixes)

	t.Setenv("TRUSTED_PROXIES", "10.0.0.0/8,10.0.0.0/33")
	err := LoadAPI().TrustedProxies.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TRUSTED_PROXIES")
}
