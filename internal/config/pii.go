package config

import "fmt"

// PII configures the keys that encrypt personal data (the customer's e-mail)
// at rest in PostgreSQL. Keys come from the environment or a file, never from
// code: a process that stores or reads personal data refuses to start
// without them. `make run` generates one into the stack's data directory.
type PII struct {
	// Keys is a comma-separated list of kid:base64key pairs, each key 32
	// bytes (AES-256) (PII_KEYS).
	Keys string
	// KeysFile names a file holding the same pairs, one per line; # starts a
	// comment (PII_KEYS_FILE). Its keys are added to Keys.
	KeysFile string
	// ActiveKey is the id of the key new data is encrypted with
	// (PII_ACTIVE_KEY); unset means the last key listed. Every other key
	// still decrypts what it encrypted, so rotating is: add a key, make it
	// active, run `orderflow migrate` to re-encrypt, then drop the old key.
	ActiveKey string
}

// LoadPII reads the PII key settings.
func LoadPII() PII {
	return PII{Keys: Env("PII_KEYS", ""), KeysFile: Env("PII_KEYS_FILE", ""), ActiveKey: Env("PII_ACTIVE_KEY", "")}
}

// String renders the settings for a start-up log line without any key.
func (p PII) String() string {
	keys := "unset"
	if p.Keys != "" {
		keys = "set"
	}
	return fmt.Sprintf("pii_keys=%s pii_keys_file=%q pii_active_key=%q", keys, p.KeysFile, p.ActiveKey)
}
