package tlsconf

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/devtools/testkit"
)

func TestNothingSetMeansNoTLS(t *testing.T) {
	c, err := Client(ClientConfig{})
	if c != nil || err != nil {
		t.Fatalf("Client of nothing = %v, %v; want nil, nil", c, err)
	}
	s, err := Server(ServerConfig{})
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
	cfg, err := Client(ClientConfig{CAFile: server.CA, CertFile: client.Cert, KeyFile: client.Key, ServerName: "temporal.test"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.ServerName != "temporal.test" || len(cfg.Certificates) != 1 {
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
	noCA, err := Client(ClientConfig{CertFile: client.Cert, KeyFile: client.Key, ServerName: "temporal.test"})
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
		cfg  ClientConfig
		want []string
	}{
		{"CA file missing", ClientConfig{CAFile: missing}, []string{"TEMPORAL_TLS_CA_FILE", "missing.pem"}},
		{"CA file not PEM", ClientConfig{CAFile: notPEM}, []string{"TEMPORAL_TLS_CA_FILE", "not.pem", "no PEM certificate"}},
		{"certificate without key", ClientConfig{CAFile: good.CA, CertFile: good.Cert}, []string{"TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE"}},
		{"key without certificate", ClientConfig{KeyFile: good.Key}, []string{"TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE"}},
		{"certificate not PEM", ClientConfig{CertFile: notPEM, KeyFile: good.Key}, []string{"TEMPORAL_TLS_CERT_FILE", "not.pem"}},
		{"key of another certificate", ClientConfig{CertFile: good.Cert, KeyFile: other.Key}, []string{"TEMPORAL_TLS_KEY_FILE", "private key does not match"}},
		{"key file missing", ClientConfig{CertFile: good.Cert, KeyFile: missing}, []string{"TEMPORAL_TLS_KEY_FILE", "missing.pem"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Client(tc.cfg)
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
	if _, err := Client(ClientConfig{CAFile: missing}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file's error does not wrap os.ErrNotExist: %v", err)
	}
}

func TestServerConfigFailsClearlyOnBadFiles(t *testing.T) {
	good := testkit.Certs(t, "gateway.test")
	other := testkit.Certs(t, "other.test")
	for _, c := range []ServerConfig{{CertFile: good.Cert}, {KeyFile: good.Key}, {CertFile: good.Cert, KeyFile: other.Key}} {
		if cfg, err := Server(c); err == nil || !strings.Contains(err.Error(), "API_TLS_") {
			t.Errorf("Server(%+v) = %v, %v; want an error naming API_TLS_*", c, cfg, err)
		}
	}
	cfg, err := Server(ServerConfig{CertFile: good.Cert, KeyFile: good.Key})
	if err != nil || cfg.MinVersion != tls.VersionTLS12 || len(cfg.Certificates) != 1 {
		t.Fatalf("Server = %+v, %v", cfg, err)
	}
}
