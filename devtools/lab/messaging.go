package lab

import (
	"fmt"
	"os"
	"strings"
)

// MailpitArgs is mailpit's command line for every stack and test: SMTP on
// smtpAddr in plain text taking any or no credentials, its web UI and API
// on httpAddr, what it receives kept in the database file db.
func MailpitArgs(smtpAddr, httpAddr, db string) []string {
	return []string{"--smtp", smtpAddr, "--listen", httpAddr, "--database", db,
		"--disable-version-check", "--smtp-disable-rdns", "--smtp-auth-accept-any", "--smtp-auth-allow-insecure"}
}

// WriteNATSConfig writes nats-server's configuration to path: clients on
// addr, monitoring (its /healthz) on monitor, JetStream with its store in
// storeDir and every write synced before it is acknowledged, then the extra
// lines ("max_payload: 2048").
func WriteNATSConfig(path, addr, monitor, storeDir string, extra ...string) error {
	body := fmt.Sprintf("listen: %q\nhttp: %q\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\n%s\n",
		addr, monitor, storeDir, strings.Join(extra, "\n"))
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return fmt.Errorf("nats config: %w", err)
	}
	return nil
}

// NATSHealthURL is the monitoring URL that answers 200 once JetStream is up.
func NATSHealthURL(monitor string) string {
	return "http://" + monitor + "/healthz?js-enabled-only=true"
}
