// Package pii encrypts personal data (a customer's e-mail address) for
// storage with AES-256-GCM under a keyring of named keys. Every ciphertext
// carries the id of the key that sealed it, so keys rotate: new data is
// sealed with the active key while data sealed with an older key still
// opens, until it is re-encrypted and the old key dropped.
//
// A ciphertext is: version (1 byte, 1) | key id length (1 byte) | key id |
// nonce (12 bytes) | AES-GCM ciphertext and tag. The version and key id are
// authenticated along with the caller's associated data, which binds a
// ciphertext to its row (orderflow passes the order id), so a ciphertext
// copied to another row does not open there.
package pii

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

const (
	version   = 1
	keySize   = 32
	nonceSize = 12
	maxKID    = 64
)

// Errors Open returns, wrapped with detail; test them with errors.Is.
var (
	// ErrNoKeys: neither PII_KEYS nor PII_KEYS_FILE names a key.
	ErrNoKeys = errors.New("pii: no encryption keys configured (set PII_KEYS or PII_KEYS_FILE)")
	// ErrUnknownKey: the ciphertext names a key id the keyring does not hold
	// (a key dropped before its data was re-encrypted, or a wrong keyring).
	ErrUnknownKey = errors.New("pii: unknown key id")
	// ErrMalformed: the bytes are not a ciphertext of this package.
	ErrMalformed = errors.New("pii: malformed ciphertext")
	// ErrTampered: authentication failed: the ciphertext, its key id or its
	// associated data changed, or the key with that id is not the one that
	// sealed it.
	ErrTampered = errors.New("pii: ciphertext failed authentication")
)

// Keyring holds the named AES-256 keys and which one seals new data. It is
// safe for concurrent use.
type Keyring struct {
	active string
	aeads  map[string]cipher.AEAD
}

// New builds a keyring from 32-byte keys by id; active names the key that
// seals, and must be among them.
func New(keys map[string][]byte, active string) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	k := &Keyring{active: active, aeads: make(map[string]cipher.AEAD, len(keys))}
	for id, key := range keys {
		if err := validKID(id); err != nil {
			return nil, err
		}
		if len(key) != keySize {
			return nil, fmt.Errorf("pii: key %q is %d bytes, want %d (AES-256)", id, len(key), keySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("pii: key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("pii: key %q: %w", id, err)
		}
		k.aeads[id] = aead
	}
	if _, ok := k.aeads[active]; !ok {
		return nil, fmt.Errorf("pii: active key %q is not among the configured keys", active)
	}
	return k, nil
}

// Load builds the keyring the configuration names: the keys of PII_KEYS and
// of the file PII_KEYS_FILE, the active one PII_ACTIVE_KEY or else the last
// listed. It returns ErrNoKeys when there is none.
func Load(cfg Config) (*Keyring, error) {
	keys, order, err := Parse(cfg.Keys)
	if err != nil {
		return nil, err
	}
	if cfg.KeysFile != "" {
		b, err := os.ReadFile(cfg.KeysFile)
		if err != nil {
			return nil, fmt.Errorf("pii: read keys file: %w", err)
		}
		var lines []string
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
		more, moreOrder, err := Parse(strings.Join(lines, ","))
		if err != nil {
			return nil, fmt.Errorf("%w (in %s)", err, cfg.KeysFile)
		}
		for _, id := range moreOrder {
			if _, dup := keys[id]; dup {
				return nil, fmt.Errorf("pii: key id %q is configured twice", id)
			}
			keys[id] = more[id]
			order = append(order, id)
		}
	}
	if len(order) == 0 {
		return nil, ErrNoKeys
	}
	active := cfg.ActiveKey
	if active == "" {
		active = order[len(order)-1]
	}
	return New(keys, active)
}

// LoadOptional is Load for a process that can do without keys (migrate,
// replay, the load generator): no key configured is a nil keyring and no
// error; any other fault of the configuration is still an error.
func LoadOptional(cfg Config) (*Keyring, error) {
	k, err := Load(cfg)
	if errors.Is(err, ErrNoKeys) {
		return nil, nil
	}
	return k, err
}

// Parse reads "kid1:base64key,kid2:base64key" (standard or URL base64,
// padded or not) into keys by id and the ids in the order listed.
func Parse(spec string) (map[string][]byte, []string, error) {
	keys := map[string][]byte{}
	var order []string
	for _, pair := range strings.Split(spec, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		id, enc, ok := strings.Cut(pair, ":")
		if !ok {
			return nil, nil, fmt.Errorf("pii: key entry without an id: want kid:base64key")
		}
		if err := validKID(id); err != nil {
			return nil, nil, err
		}
		if _, dup := keys[id]; dup {
			return nil, nil, fmt.Errorf("pii: key id %q is configured twice", id)
		}
		key, err := decodeKey(enc)
		if err != nil {
			return nil, nil, fmt.Errorf("pii: key %q: %w", id, err)
		}
		keys[id] = key
		order = append(order, id)
	}
	return keys, order, nil
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

func validKID(id string) error {
	if id == "" || len(id) > maxKID {
		return fmt.Errorf("pii: key id %q must be 1 to %d characters", id, maxKID)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("pii: key id %q may hold only letters, digits, '-', '_' and '.'", id)
		}
	}
	return nil
}

// NewKey returns a fresh random 32-byte key, base64-encoded as PII_KEYS
// expects it.
func NewKey() string {
	b := make([]byte, keySize)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return base64.StdEncoding.EncodeToString(b)
}

// Active is the id of the key that seals.
func (k *Keyring) Active() string { return k.active }

// Seal encrypts plaintext with the active key, bound to aad.
func (k *Keyring) Seal(plaintext, aad []byte) []byte {
	aead := k.aeads[k.active]
	head := header(k.active)
	out := make([]byte, len(head), len(head)+nonceSize+len(plaintext)+aead.Overhead())
	copy(out, head)
	nonce := out[len(head) : len(head)+nonceSize]
	out = out[:len(head)+nonceSize]
	_, _ = rand.Read(nonce)
	return aead.Seal(out, nonce, plaintext, associated(head, aad))
}

// SealString is Seal of a string.
func (k *Keyring) SealString(plaintext, aad string) []byte {
	return k.Seal([]byte(plaintext), []byte(aad))
}

// Open decrypts a ciphertext sealed with any key of the keyring and the same
// aad. It fails with ErrMalformed, ErrUnknownKey (naming the key id) or
// ErrTampered.
func (k *Keyring) Open(ciphertext, aad []byte) ([]byte, error) {
	id, rest, err := split(ciphertext)
	if err != nil {
		return nil, err
	}
	aead, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w %q: the keyring holds %s", ErrUnknownKey, id, k.ids())
	}
	if len(rest) < nonceSize+aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrMalformed)
	}
	head := ciphertext[:len(ciphertext)-len(rest)]
	plain, err := aead.Open(nil, rest[:nonceSize], rest[nonceSize:], associated(head, aad))
	if err != nil {
		return nil, fmt.Errorf("%w (key %q)", ErrTampered, id)
	}
	return plain, nil
}

// OpenString is Open returning a string.
func (k *Keyring) OpenString(ciphertext []byte, aad string) (string, error) {
	b, err := k.Open(ciphertext, []byte(aad))
	return string(b), err
}

// KeyID returns the id of the key that sealed ciphertext, without opening it.
func KeyID(ciphertext []byte) (string, error) {
	id, _, err := split(ciphertext)
	return id, err
}

func (k *Keyring) ids() string {
	ids := make([]string, 0, len(k.aeads))
	for id := range k.aeads {
		ids = append(ids, fmt.Sprintf("%q", id))
	}
	slices.Sort(ids)
	return strings.Join(ids, ", ")
}

func header(id string) []byte {
	return append([]byte{version, byte(len(id))}, id...) // #nosec G115 -- key ids are 1 to maxKID (64) bytes, checked when loaded
}

func split(c []byte) (id string, rest []byte, err error) {
	if len(c) < 2 || c[0] != version {
		return "", nil, fmt.Errorf("%w: unknown version", ErrMalformed)
	}
	n := int(c[1])
	if n == 0 || n > maxKID || len(c) < 2+n {
		return "", nil, fmt.Errorf("%w: bad key id", ErrMalformed)
	}
	return string(c[2 : 2+n]), c[2+n:], nil
}

func associated(head, aad []byte) []byte {
	out := make([]byte, 0, len(head)+len(aad))
	return append(append(out, head...), aad...)
}
