package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/tlsconf"
)

func TestNothingSetMeansNoTLS(t *testing.T) {
	c, err := tlsconf.Client(tlsconf.ClientConfig{})
	if c != nil || err != nil {
		t.Fatalf("Client of nothing = %v, %v; want nil, nil", c, err)
	}
	s, err := tlsconf.Server(tlsconf.ServerConfig{})
	if s != nil || err != nil {
		t.Fatalf("Server of nothing = %v, %v; want nil, nil", s, err)
	}
}

// The Temporal client's configuration from files completes a mutual TLS
// handshake with a server that requires a client certificate signed by the
// test CA and presents one for the configured server name.
func TestTemporalClientConfigDoesMutualTLSWithTheFilesItLoaded(t *testing.T) {
	server := testkit.Certs(t, "temporal.test")
	client := testkit.Certs(t, "worker.test")
	cfg, err := tlsconf.Client(tlsconf.ClientConfig{CAFile: server.CA, CertFile: client.Cert, KeyFile: client.Key, ServerName: "temporal.test"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS13 || cfg.ServerName != "temporal.test" || len(cfg.Certificates) != 1 {
		t.Fatalf("config: min %x, server name %q, %d certificates", cfg.MinVersion, cfg.ServerName, len(cfg.Certificates))
	}
	cert, err := tls.LoadX509KeyPair(server.Cert, server.Key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: client.Pool})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan string, 2)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				tc := conn.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					peer <- err.Error()
					return
				}
				peer <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
			}()
		}
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatalf("handshake with the client configuration: %v", err)
	}
	defer conn.Close()
	if got := <-peer; got != "worker.test" {
		t.Fatalf("the server saw client certificate %q, want worker.test", got)
	}

	// Without the CA the same server is not trusted.
	noCA, err := tlsconf.Client(tlsconf.ClientConfig{CertFile: client.Cert, KeyFile: client.Key, ServerName: "temporal.test"})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := tls.Dial("tcp", ln.Addr().String(), noCA); err == nil {
		c.Close()
		t.Fatal("a server signed by an unknown CA was trusted")
	}
	<-peer // the server's side of the refused handshake
}

// Bad files fail when the configuration is built, with an error naming the
// variable and the file, never at the first handshake.
func TestTemporalClientConfigFailsClearlyOnBadFiles(t *testing.T) {
	good := testkit.Certs(t, "temporal.test")
	other := testkit.Certs(t, "other.test")
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("this is not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	cases := []struct {
		name string
		cfg  tlsconf.ClientConfig
		want []string
	}{
		{"CA file missing", tlsconf.ClientConfig{CAFile: missing}, []string{"TEMPORAL_TLS_CA_FILE", "missing.pem"}},
		{"CA file not PEM", tlsconf.ClientConfig{CAFile: notPEM}, []string{"TEMPORAL_TLS_CA_FILE", "not.pem", "no PEM certificate"}},
		{"certificate without key", tlsconf.ClientConfig{CAFile: good.CA, CertFile: good.Cert}, []string{"TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE"}},
		{"key without certificate", tlsconf.ClientConfig{KeyFile: good.Key}, []string{"TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE"}},
		{"certificate not PEM", tlsconf.ClientConfig{CertFile: notPEM, KeyFile: good.Key}, []string{"TEMPORAL_TLS_CERT_FILE", "not.pem"}},
		{"key of another certificate", tlsconf.ClientConfig{CertFile: good.Cert, KeyFile: other.Key}, []string{"TEMPORAL_TLS_KEY_FILE", "private key does not match"}},
		{"key file missing", tlsconf.ClientConfig{CertFile: good.Cert, KeyFile: missing}, []string{"TEMPORAL_TLS_KEY_FILE", "missing.pem"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tlsconf.Client(tc.cfg)
			if err == nil {
				t.Fatalf("built %v from bad files", cfg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if _, err := tlsconf.Client(tlsconf.ClientConfig{CAFile: missing}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file's error does not wrap os.ErrNotExist: %v", err)
	}
}

func TestServerConfigFailsClearlyOnBadFiles(t *testing.T) {
	good := testkit.Certs(t, "gateway.test")
	other := testkit.Certs(t, "other.test")
	for _, c := range []tlsconf.ServerConfig{{CertFile: good.Cert}, {KeyFile: good.Key}, {CertFile: good.Cert, KeyFile: other.Key}} {
		if cfg, err := tlsconf.Server(c); err == nil || !strings.Contains(err.Error(), "API_TLS_") {
			t.Errorf("tlsconf.Server(%+v) = %v, %v; want an error naming API_TLS_*", c, cfg, err)
		}
	}
	cfg, err := tlsconf.Server(tlsconf.ServerConfig{CertFile: good.Cert, KeyFile: good.Key})
	if err != nil || cfg.MinVersion != tls.VersionTLS13 || len(cfg.Certificates) != 1 {
		t.Fatalf("Server = %+v, %v", cfg, err)
	}
}

// serveTLS accepts connections on a loopback listener with cfg and
// completes each handshake; it returns the address.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.(*tls.Conn).Handshake()
			}()
		}
	}()
	return ln.Addr().String()
}

// The gateway's listener configuration refuses a client that speaks at
// most TLS 1.2 unless MinVersion (TLS_MIN_VERSION) is 1.2, and always
// serves TLS 1.3.
func TestServerRefusesTLS12ClientsUnlessMinVersionIs12(t *testing.T) {
	certs := testkit.Certs(t, "gateway.test")
	for _, tc := range []struct {
		min      uint16
		accept12 bool
	}{{0, false}, {tls.VersionTLS13, false}, {tls.VersionTLS12, true}} {
		cfg, err := tlsconf.Server(tlsconf.ServerConfig{CertFile: certs.Cert, KeyFile: certs.Key, MinVersion: tc.min})
		if err != nil {
			t.Fatal(err)
		}
		addr := serveTLS(t, cfg)
		for _, max := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: certs.Pool, ServerName: "gateway.test", MaxVersion: max})
			want := max == tls.VersionTLS13 || tc.accept12
			switch {
			case err == nil && !want:
				conn.Close()
				t.Errorf("min %#x: a client of at most %s was served", tc.min, tls.VersionName(max))
			case err != nil && want:
				t.Errorf("min %#x: a client of at most %s was refused: %v", tc.min, tls.VersionName(max), err)
			case err != nil && !strings.Contains(err.Error(), "protocol version"):
				t.Errorf("min %#x: refused for another reason than the version: %v", tc.min, err)
			case err == nil:
				conn.Close()
			}
		}
	}
}

// Our clients' configuration (Temporal's, and through tlsconf.Min the
// others') refuses a server that speaks at most TLS 1.2 unless MinVersion
// is 1.2, and a server whose certificate is for another name even when a
// trusted CA signed it.
func TestClientRefusesTLS12ServersAndCertificatesForAnotherName(t *testing.T) {
	certs := testkit.Certs(t, "other.test")
	cert, err := tls.LoadX509KeyPair(certs.Cert, certs.Key)
	if err != nil {
		t.Fatal(err)
	}
	only12 := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12})
	for _, tc := range []struct {
		min    uint16
		accept bool
	}{{0, false}, {tls.VersionTLS12, true}} {
		cfg, err := tlsconf.Client(tlsconf.ClientConfig{CAFile: certs.CA, ServerName: "other.test", MinVersion: tc.min})
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", only12, cfg)
		if err == nil {
			conn.Close()
		}
		if (err == nil) != tc.accept {
			t.Errorf("min %#x: handshake with a TLS 1.2 server: %v, want accepted %v", tc.min, err, tc.accept)
		}
	}

	anyVersion := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	cfg, err := tlsconf.Client(tlsconf.ClientConfig{CAFile: certs.CA, ServerName: "temporal.test"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", anyVersion, cfg)
	if err == nil {
		conn.Close()
		t.Fatal("a certificate for other.test was accepted for temporal.test")
	}
	var host x509.HostnameError
	if !errors.As(err, &host) {
		t.Fatalf("refused for another reason than the name: %v", err)
	}
	if tlsconf.Min(0) != tls.VersionTLS13 || tlsconf.Min(tls.VersionTLS12) != tls.VersionTLS12 {
		t.Errorf("Min(0) = %#x, Min(1.2) = %#x", tlsconf.Min(0), tlsconf.Min(tls.VersionTLS12))
	}
}
