package pii

import "fmt"

// Config names the keys that encrypt personal data (the customer's e-mail)
// at rest in PostgreSQL and in Temporal payloads. Keys come from the
// environment or a file, never from code (internal/config declares the
// variables): a process that stores or reads personal data refuses to start
// without them.
type Config struct {
	// Keys is a comma-separated list of kid:base64key pairs, each key 32
	// bytes (AES-256).
	Keys string
	// KeysFile names a file holding the same pairs, one per line; # starts a
	// comment. Its keys are added to Keys.
	KeysFile string
	// ActiveKey is the id of the key new data is encrypted with; empty means
	// the last key listed. Every other key still decrypts what it encrypted,
	// so rotating is: add a key, make it active, run `orderflow migrate` to
	// re-encrypt, then drop the old key.
	ActiveKey string
}

// String renders the settings for a start-up log line without any key.
func (c Config) String() string {
	keys := "unset"
	if c.Keys != "" {
		keys = "set"
	}
	return fmt.Sprintf("pii_keys=%s pii_keys_file=%q pii_active_key=%q", keys, c.KeysFile, c.ActiveKey)
}
