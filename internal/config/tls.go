package config

import "errors"

// ServerTLS names the PEM files of the gateway's certificate and key
// (API_TLS_CERT_FILE, API_TLS_KEY_FILE). With both set the gateway serves
// HTTPS only, and sends Strict-Transport-Security; with neither it serves
// plain HTTP, as behind a TLS-terminating ingress.
type ServerTLS struct {
	CertFile string
	KeyFile  string
}

// LoadServerTLS reads the gateway's TLS files.
func LoadServerTLS() ServerTLS {
	return ServerTLS{CertFile: Env("API_TLS_CERT_FILE", ""), KeyFile: Env("API_TLS_KEY_FILE", "")}
}

// Enabled reports whether the gateway serves HTTPS. One of the two files
// without the other is a configuration error (Validate).
func (t ServerTLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Validate refuses a certificate without its key or a key without its
// certificate.
func (t ServerTLS) Validate() error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("API_TLS_CERT_FILE and API_TLS_KEY_FILE must be set together")
	}
	return nil
}

// TemporalTLS configures TLS, and with a client certificate mutual TLS, to
// the Temporal frontend (a self-hosted cluster with TLS, or Temporal Cloud).
// Setting any field turns TLS on; CAFile empty trusts the system's roots.
type TemporalTLS struct {
	// CAFile is a PEM bundle of the CAs the frontend's certificate must
	// chain to (TEMPORAL_TLS_CA_FILE).
	CAFile string
	// CertFile and KeyFile are the client certificate and key mutual TLS
	// presents (TEMPORAL_TLS_CERT_FILE, TEMPORAL_TLS_KEY_FILE); both or neither.
	CertFile string
	KeyFile  string
	// ServerName overrides the name the frontend's certificate is checked
	// against, when TEMPORAL_ADDRESS is an IP or another name
	// (TEMPORAL_TLS_SERVER_NAME).
	ServerName string
}

// LoadTemporalTLS reads the Temporal client's TLS settings.
func LoadTemporalTLS() TemporalTLS {
	return TemporalTLS{CAFile: Env("TEMPORAL_TLS_CA_FILE", ""), CertFile: Env("TEMPORAL_TLS_CERT_FILE", ""),
		KeyFile: Env("TEMPORAL_TLS_KEY_FILE", ""), ServerName: Env("TEMPORAL_TLS_SERVER_NAME", "")}
}

// Enabled reports whether the Temporal client dials with TLS.
func (t TemporalTLS) Enabled() bool { return t != TemporalTLS{} }
