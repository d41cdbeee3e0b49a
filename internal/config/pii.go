package config

import "github.com/orderflow/orderflow/internal/pii"

// PII names the keys that encrypt personal data; the type is internal/pii's
// own Config, filled here from PII_KEYS, PII_KEYS_FILE and PII_ACTIVE_KEY.
type PII = pii.Config

// LoadPII reads the PII key settings.
func LoadPII() PII {
	return PII{Keys: Env("PII_KEYS", ""), KeysFile: Env("PII_KEYS_FILE", ""), ActiveKey: Env("PII_ACTIVE_KEY", "")}
}
