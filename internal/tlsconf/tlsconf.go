// Package tlsconf builds the TLS configurations orderflow uses from PEM
// files: the gateway's HTTPS listener and the Temporal client's TLS or
// mutual TLS. Both refuse anything below TLS 1.2 and otherwise keep Go's
// defaults (its cipher suites and curves, which track current advice).
// Every error names the file and the variable that set it.
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
}

// Enabled reports whether the Temporal client dials with TLS.
func (c ClientConfig) Enabled() bool { return c != ClientConfig{} }

// MinVersion is the oldest protocol version either side accepts.
const MinVersion = tls.VersionTLS12

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
	return &tls.Config{MinVersion: MinVersion, Certificates: []tls.Certificate{cert}}, nil
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
	cfg := &tls.Config{MinVersion: MinVersion, ServerName: c.ServerName}
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
