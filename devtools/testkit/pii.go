package testkit

import (
	"os"
	"sync"
	"testing"

	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/pii"
)

var (
	piiOnce sync.Once
	piiKeys *pii.Keyring
	piiErr  error
)

// PII returns the keyring the test's workers encrypt personal data with:
// the one PII_KEYS / PII_KEYS_FILE name (scripts/test.sh generates one, so
// processes the tests start share it), else one random key for the whole
// test process.
func PII(t testing.TB) *pii.Keyring {
	t.Helper()
	piiOnce.Do(func() {
		v := config.Load(os.LookupEnv, config.Replay)
		cfg := pii.Config{Keys: config.PIIKeys.Get(v), KeysFile: config.PIIKeysFile.Get(v), ActiveKey: config.PIIActiveKey.Get(v)}
		if piiErr = v.Err(); piiErr != nil {
			return
		}
		piiKeys, piiErr = pii.LoadOptional(cfg)
		if piiErr == nil && piiKeys == nil {
			piiKeys, piiErr = pii.Load(pii.Config{Keys: "test:" + pii.NewKey()})
		}
	})
	if piiErr != nil {
		t.Fatalf("PII keyring: %v", piiErr)
	}
	return piiKeys
}
