// Package tlsconf builds the TLS configurations orderflow uses from PEM
// files: the gateway's HTTPS listeners and the Temporal client's TLS or
// mutual TLS, and holds the oldest protocol version every listener and
// client of the project accepts (TLS_MIN_VERSION: 1.3 unless set to 1.2 for
// an old load balancer). Otherwise they keep Go's defaults (its cipher
// suites and curves, which track current advice). Every error names the
// file and the variable that set it.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ServerConfig names the PEM files of the gateway's certificate and key
// (internal/config declares the settings that fill it). With both set the gateway serves
// HTTPS only, and sends Strict-Transport-Security; with neither it serves
// plain HTTP, as behind a TLS-terminating ingress.
type ServerConfig struct {
	CertFile string
	KeyFile  string
	// MinVersion is the oldest TLS version served (TLS_MIN_VERSION); zero
	// means DefaultMinVersion.
	MinVersion uint16
}

// Enabled reports whether the gateway serves HTTPS. One of the two files
// without the other is a configuration error (Validate).
func (c ServerConfig) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" }

// Validate refuses a certificate without its key or a key without its
// certificate.
func (c ServerConfig) Validate() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("API_TLS_CERT_FILE and API_TLS_KEY_FILE must be set together")
	}
	return nil
}

// ClientConfig configures TLS, and with a client certificate mutual TLS, to
// the Temporal frontend (a self-hosted cluster with TLS, or Temporal Cloud).
// Setting any field turns TLS on; CAFile empty trusts the system's roots.
type ClientConfig struct {
	// CAFile is a PEM bundle of the CAs the frontend's certificate must
	// chain to.
	CAFile string
	// CertFile and KeyFile are the client certificate and key mutual TLS
	// presents; both or neither.
	CertFile string
	KeyFile  string
	// ServerName overrides the name the frontend's certificate is checked
	// against, when the address is an IP or another name.
	ServerName string
	// MinVersion is the oldest TLS version offered (TLS_MIN_VERSION); zero
	// means DefaultMinVersion. It does not turn TLS on.
	MinVersion uint16
}

// Enabled reports whether the Temporal client dials with TLS: any of the
// files or the server name is set.
func (c ClientConfig) Enabled() bool {
	return c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != ""
}

// DefaultMinVersion is the oldest protocol version accepted when
// TLS_MIN_VERSION is not set: TLS 1.3, which every supported Temporal,
// PostgreSQL, Redis and browser speaks. TLS 1.2 (TLS_MIN_VERSION=1.2) is
// the documented switch for an old load balancer in front of the gateway.
const DefaultMinVersion = tls.VersionTLS13

// Min returns v, or DefaultMinVersion when v is zero (not configured).
func Min(v uint16) uint16 {
	if v == 0 {
		return DefaultMinVersion
	}
	return v
}

// Server returns the gateway's listener configuration with the certificate
// and key of c loaded, or nil when c is not enabled. A certificate and key
// that cannot be read, are not PEM or do not match are an error, so a
// misconfigured gateway fails at start rather than at the first handshake.
// The files are read once: rotating the certificate means restarting the
// gateway (a rolling restart in Kubernetes).
func Server(c ServerConfig) (*tls.Config, error) {
	if !c.Enabled() {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("gateway TLS: load API_TLS_CERT_FILE %s and API_TLS_KEY_FILE %s: %w", c.CertFile, c.KeyFile, err)
	}
	return &tls.Config{MinVersion: Min(c.MinVersion), Certificates: []tls.Certificate{cert}}, nil
}

// Client returns the Temporal client's TLS configuration for c, or nil when
// c is not enabled (the dev server speaks plain gRPC). With CAFile the
// frontend's certificate must chain to those CAs, otherwise to the system's;
// with CertFile and KeyFile the client presents that certificate (mutual
// TLS, as Temporal Cloud requires).
func Client(c ClientConfig) (*tls.Config, error) {
	if !c.Enabled() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: Min(c.MinVersion), ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("temporal TLS: read TEMPORAL_TLS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("temporal TLS: TEMPORAL_TLS_CA_FILE %s holds no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, fmt.Errorf("temporal TLS: TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE must be set together")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("temporal TLS: load TEMPORAL_TLS_CERT_FILE %s and TEMPORAL_TLS_KEY_FILE %s: %w", c.CertFile, c.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
