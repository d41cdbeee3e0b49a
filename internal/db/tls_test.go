package db_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/db"
)

// With TLS on, DATABASE_URL's sslmode=verify-full checks the server's
// certificate and its name: the test PostgreSQL's certificate (Debian's
// self-signed one, for localhost) is accepted as localhost and refused as
// 127.0.0.1, and the connection offers TLS_MIN_VERSION (1.3 by default) and
// runs over TLS 1.3.
func TestPostgresOverTLSChecksTheServersNameAndTheMinimumVersion(t *testing.T) {
	raw := testkit.Require(t, testkit.EnvDatabase)
	ctx := context.Background()
	plain := testkit.DB(t)
	var on, certFile string
	require.NoError(t, plain.QueryRow(ctx, "SELECT current_setting('ssl'), current_setting('ssl_cert_file')").Scan(&on, &certFile))
	if on != "on" {
		t.Skip("the test PostgreSQL serves no TLS (ssl = off)")
	}
	u, err := url.Parse(raw)
	require.NoError(t, err)
	q := u.Query()
	// Debian's certificate is self-signed: it is its own root.
	q.Set("sslmode", "verify-full")
	q.Set("sslrootcert", certFile)
	u.RawQuery = q.Encode()

	u.Host = net.JoinHostPort("localhost", u.Port())
	for _, tc := range []struct {
		min, want uint16
	}{{0, tls.VersionTLS13}, {tls.VersionTLS12, tls.VersionTLS12}} {
		pool, err := db.Open(ctx, u.String(), db.WithTLSMinVersion(tc.min))
		require.NoError(t, err, "verify-full to localhost")
		assert.Equal(t, tc.want, pool.Config().ConnConfig.TLSConfig.MinVersion, "the oldest version offered")
		var version string
		require.NoError(t, pool.QueryRow(ctx, "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&version))
		assert.Equal(t, "TLSv1.3", version)
		pool.Close()
	}

	u.Host = net.JoinHostPort("127.0.0.1", u.Port())
	pool, err := db.Open(ctx, u.String(), db.WithTLSMinVersion(0))
	if err == nil {
		pool.Close()
		t.Fatal("a certificate for localhost was accepted for 127.0.0.1")
	}
	var name x509.HostnameError
	assert.True(t, errors.As(err, &name), "refused for another reason than the name: %v", err)
}
