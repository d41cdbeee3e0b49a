package pii_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/internal/pii"
)

func keyring(t *testing.T, spec, active string) *pii.Keyring {
	t.Helper()
	k, err := pii.Load(pii.Config{Keys: spec, ActiveKey: active})
	require.NoError(t, err)
	return k
}

func TestSealOpensWithTheSameKeyAndRowOnly(t *testing.T) {
	k1, k2 := pii.NewKey(), pii.NewKey()
	old := keyring(t, "k1:"+k1, "")
	rotated := keyring(t, "k1:"+k1+",k2:"+k2, "k2")
	dropped := keyring(t, "k2:"+k2, "")
	forged := keyring(t, "k1:"+pii.NewKey(), "") // same id, another key

	underOld := old.SealString("ada@example.com", "order-1")
	underNew := rotated.SealString("ada@example.com", "order-1")
	id, err := pii.KeyID(underNew)
	require.NoError(t, err)
	assert.Equal(t, "k2", id, "writes use the active key")

	flipped := bytes.Clone(underOld)
	flipped[len(flipped)-1] ^= 1
	renamed := bytes.Clone(underNew) // k2 -> k1: the key id is authenticated too
	renamed[3] = '1'

	for _, tc := range []struct {
		name       string
		ring       *pii.Keyring
		ciphertext []byte
		aad        string
		want       error
	}{
		{"round trip", old, underOld, "order-1", nil},
		{"rows sealed under the old key open after rotation", rotated, underOld, "order-1", nil},
		{"rows sealed under the new key open", rotated, underNew, "order-1", nil},
		{"a dropped key fails clearly", dropped, underOld, "order-1", pii.ErrUnknownKey},
		{"another row's ciphertext does not open", old, underOld, "order-2", pii.ErrTampered},
		{"a flipped bit fails", old, flipped, "order-1", pii.ErrTampered},
		{"a rewritten key id fails", rotated, renamed, "order-1", pii.ErrTampered},
		{"the same id with another key fails", forged, underOld, "order-1", pii.ErrTampered},
		{"plaintext is not a ciphertext", old, []byte("ada@example.com"), "order-1", pii.ErrMalformed},
		{"a truncated ciphertext fails", old, underOld[:10], "order-1", pii.ErrMalformed},
		{"empty fails", old, nil, "order-1", pii.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.ring.OpenString(tc.ciphertext, tc.aad)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "ada@example.com", got)
		})
	}
}

func TestUnknownKeyErrorNamesTheKeyID(t *testing.T) {
	c := keyring(t, "retired-2025:"+pii.NewKey(), "").SealString("a@b.c", "x")
	_, err := keyring(t, "current:"+pii.NewKey(), "").OpenString(c, "x")
	require.ErrorIs(t, err, pii.ErrUnknownKey)
	assert.Contains(t, err.Error(), `"retired-2025"`)
	assert.Contains(t, err.Error(), `"current"`)
}

func TestSealHidesThePlaintextAndNeverRepeats(t *testing.T) {
	k := keyring(t, "k:"+pii.NewKey(), "")
	a, b := k.SealString("ada@example.com", "o"), k.SealString("ada@example.com", "o")
	assert.NotContains(t, string(a), "ada@example.com")
	assert.NotEqual(t, a, b, "a fresh nonce per seal")
}

func TestLoad(t *testing.T) {
	k1, k2 := pii.NewKey(), pii.NewKey()
	dir := t.TempDir()
	file := filepath.Join(dir, "keys")
	require.NoError(t, os.WriteFile(file, []byte("# rotated 2026-11\nk1:"+k1+"\n\nk2:"+k2+"\n"), 0o600))
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, tc := range []struct {
		name    string
		cfg     pii.Config
		active  string
		wantErr string
	}{
		{"env, last listed is active", pii.Config{Keys: "k1:" + k1 + ",k2:" + k2}, "k2", ""},
		{"env, explicit active", pii.Config{Keys: "k1:" + k1 + ", k2:" + k2, ActiveKey: "k1"}, "k1", ""},
		{"file", pii.Config{KeysFile: file}, "k2", ""},
		{"url-safe unpadded base64", pii.Config{Keys: "k1:" + strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(k1), "=")}, "k1", ""},
		{"nothing configured", pii.Config{}, "", "no encryption keys"},
		{"active key missing", pii.Config{Keys: "k1:" + k1, ActiveKey: "k9"}, "", `active key "k9"`},
		{"a 128-bit key", pii.Config{Keys: "k1:" + short}, "", "16 bytes, want 32"},
		{"not base64", pii.Config{Keys: "k1:!!!"}, "", "not base64"},
		{"no id", pii.Config{Keys: k1}, "", "without an id"},
		{"bad id", pii.Config{Keys: "k 1:" + k1}, "", "may hold only"},
		{"duplicate id", pii.Config{Keys: "k1:" + k1, KeysFile: file}, "", "twice"},
		{"missing file", pii.Config{KeysFile: filepath.Join(dir, "none")}, "", "read keys file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := pii.Load(tc.cfg)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.False(t, strings.Contains(err.Error(), k1) || strings.Contains(err.Error(), k2), "no key in the error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.active, k.Active())
		})
	}
	_, err := pii.Load(pii.Config{})
	assert.True(t, errors.Is(err, pii.ErrNoKeys))
}

func TestLoadOptionalIsNilOnlyWhenNoKeyIsConfigured(t *testing.T) {
	k, err := pii.LoadOptional(pii.Config{})
	require.NoError(t, err)
	assert.Nil(t, k)

	_, err = pii.LoadOptional(pii.Config{Keys: "k1:!!!"})
	require.Error(t, err, "a wrong configuration is not the same as none")
	assert.Contains(t, err.Error(), "not base64")

	k, err = pii.LoadOptional(pii.Config{Keys: "k1:" + pii.NewKey()})
	require.NoError(t, err)
	assert.Equal(t, "k1", k.Active())
}
