package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow/internal/pii"
)

// parser turns a raw value into a T and validates it. Its errors describe
// the problem without repeating the value: Values.Err adds the value unless
// the setting is secret.
type parser[T any] struct {
	kind  string
	parse func(raw string) (T, error)
}

// text is any string; each check may refuse it.
func text(checks ...func(string) error) parser[string] {
	return parser[string]{kind: "string", parse: func(raw string) (string, error) {
		for _, c := range checks {
			if err := c(raw); err != nil {
				return "", err
			}
		}
		return raw, nil
	}}
}

// file is the path of a file, read when the component starts.
var file = parser[string]{kind: "file path", parse: func(raw string) (string, error) { return raw, nil }}

// oneOf accepts only the listed words.
func oneOf(words ...string) parser[string] {
	return parser[string]{kind: strings.Join(words, " | "), parse: func(raw string) (string, error) {
		for _, w := range words {
			if raw == w {
				return raw, nil
			}
		}
		return "", fmt.Errorf("must be one of %s", strings.Join(words, ", "))
	}}
}

// integer is a whole number in [lo, hi].
func integer(lo, hi int) parser[int] {
	kind := fmt.Sprintf("integer, %d to %d", lo, hi)
	if hi == math.MaxInt {
		kind = fmt.Sprintf("integer, at least %d", lo)
	}
	return parser[int]{kind: kind, parse: func(raw string) (int, error) {
		n, err := strconv.Atoi(raw)
		if err != nil {
			return 0, errors.New("not an integer")
		}
		if n < lo || n > hi {
			return 0, rangeError(strconv.Itoa(lo), strconv.Itoa(hi), hi == math.MaxInt)
		}
		return n, nil
	}}
}

// number is a decimal number in [lo, hi].
func number(lo, hi float64) parser[float64] {
	kind := fmt.Sprintf("number, %g to %g", lo, hi)
	return parser[float64]{kind: kind, parse: func(raw string) (float64, error) {
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsNaN(f) {
			return 0, errors.New("not a number")
		}
		if f < lo || f > hi {
			return 0, rangeError(strconv.FormatFloat(lo, 'g', -1, 64), strconv.FormatFloat(hi, 'g', -1, 64), false)
		}
		return f, nil
	}}
}

// tlsVersion is the oldest TLS version accepted: 1.2 or 1.3, as crypto/tls
// numbers them.
var tlsVersion = parser[uint16]{kind: "1.2 | 1.3", parse: func(raw string) (uint16, error) {
	switch raw {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, errors.New("must be 1.2 or 1.3")
}}

// postgresURL is a PostgreSQL URL whose sslmode either turns TLS off
// (disable) or checks the server's certificate and its name (verify-full):
// the modes between (allow, prefer, the default when sslmode is absent,
// require, verify-ca) encrypt without knowing whom to, which only looks
// safe.
var postgresURL = parser[string]{kind: "URL (postgres, postgresql; sslmode=verify-full or disable)", parse: func(raw string) (string, error) {
	if err := checkURL(raw, "postgres", "postgresql"); err != nil {
		return "", err
	}
	u, _ := url.Parse(raw)
	switch mode := u.Query().Get("sslmode"); mode {
	case "disable", "verify-full":
		return raw, nil
	case "":
		return "", errors.New("names no sslmode: set sslmode=verify-full (TLS, with sslrootcert) or sslmode=disable")
	default:
		return "", fmt.Errorf("sslmode=%s does not check the server's name: use sslmode=verify-full (TLS, with sslrootcert) or sslmode=disable", mode)
	}
}}

// boolean is true or false (also 1, 0, t, f, TRUE, FALSE as strconv reads them).
var boolean = parser[bool]{kind: "boolean", parse: func(raw string) (bool, error) {
	b, err := strconv.ParseBool(raw)
	if err != nil {
		return false, errors.New("not a boolean (true or false)")
	}
	return b, nil
}}

// duration is a Go duration ("30s", "1m30s") of at least lo.
func duration(lo time.Duration) parser[time.Duration] {
	kind := "duration"
	if lo > 0 {
		kind += ", at least " + lo.String()
	}
	return parser[time.Duration]{kind: kind, parse: func(raw string) (time.Duration, error) {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return 0, errors.New("not a duration (such as 500ms, 30s, 5m, 1h)")
		}
		if d < lo {
			return 0, fmt.Errorf("must be at least %s", lo)
		}
		return d, nil
	}}
}

func rangeError(lo, hi string, open bool) error {
	if open {
		return fmt.Errorf("must be at least %s", lo)
	}
	return fmt.Errorf("must be between %s and %s", lo, hi)
}

// address is host:port with a numeric port; the host may be empty (all
// interfaces) only for a listener.
func address(listen bool) parser[string] {
	kind := "host:port"
	if listen {
		kind = "[host]:port"
	}
	return parser[string]{kind: kind, parse: func(raw string) (string, error) {
		host, port, err := net.SplitHostPort(raw)
		if err != nil {
			return "", fmt.Errorf("not a %s address", kind)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return "", errors.New("the port is not a number from 0 to 65535")
		}
		if host == "" && !listen {
			return "", errors.New("names no host")
		}
		return raw, nil
	}}
}

// hostPort checks one host:port item of a list.
func hostPort(s string) error {
	_, err := address(false).parse(s)
	return err
}

// urlOf is an absolute URL with one of the schemes.
func urlOf(schemes ...string) parser[string] {
	return parser[string]{kind: "URL (" + strings.Join(schemes, ", ") + ")", parse: func(raw string) (string, error) {
		return raw, checkURL(raw, schemes...)
	}}
}

// checkURL refuses a value that is not an absolute URL with one of schemes
// and a host. Its errors never repeat the URL, which may hold a password.
func checkURL(raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok {
		return fmt.Errorf("the scheme must be %s", strings.Join(schemes, " or "))
	}
	if u.Host == "" {
		return errors.New("the URL names no host")
	}
	return nil
}

// maskURL hides the password of a URL.
func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(not shown)"
	}
	if u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// list is a comma-separated list; blank items are dropped and each item
// must pass item.
func list(kind string, item func(string) error) parser[[]string] {
	return parser[[]string]{kind: "list of " + kind, parse: func(raw string) ([]string, error) {
		var out []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			if err := item(s); err != nil {
				return nil, fmt.Errorf("%q: %w", s, err)
			}
			out = append(out, s)
		}
		return out, nil
	}}
}

// origin checks a browser origin: scheme and host, no path.
func origin(s string) error {
	if err := checkURL(s, "http", "https"); err != nil {
		return err
	}
	if u, _ := url.Parse(s); u.Path != "" || u.RawQuery != "" || u.User != nil {
		return errors.New("an origin has no path, query or user")
	}
	return nil
}

// prefixes is a comma-separated list of CIDRs or bare addresses.
var prefixes = parser[[]netip.Prefix]{kind: "list of CIDRs or IP addresses", parse: func(raw string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(raw, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a CIDR or an IP address", s)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}}

// Provider is one entry of PAYMENT_PROVIDERS.
type Provider struct {
	Name string // as recorded in payments.provider
	Kind string // ProviderPaysim or ProviderStripe
	URL  string // empty for stripe means Stripe's own API
}

// The kinds of payment provider.
const (
	ProviderPaysim = "paysim"
	ProviderStripe = "stripe"
)

// providers reads the failover list "name=kind:url,...". The kind is
// required (a mistyped kind is an error, never read as part of a URL); a
// name may be left out ("paysim:http://...") and becomes kind-N. Names are
// unique, a paysim entry needs a URL, a URL must be http(s).
var providers = parser[[]Provider]{kind: "list of name=kind:url", parse: func(raw string) ([]Provider, error) {
	var out []Provider
	seen := map[string]bool{}
	for _, entry := range strings.Split(raw, ",") {
		if entry = strings.TrimSpace(entry); entry == "" {
			continue
		}
		name, rest, named := strings.Cut(entry, "=")
		if !named {
			name, rest = "", entry
		}
		kind, u, _ := strings.Cut(rest, ":")
		if kind != ProviderPaysim && kind != ProviderStripe {
			return nil, fmt.Errorf("entry %d: the kind must be paysim or stripe (name=kind:url)", len(out)+1)
		}
		if name = strings.TrimSpace(name); name == "" {
			if named {
				return nil, fmt.Errorf("entry %d: empty name before '='", len(out)+1)
			}
			name = fmt.Sprintf("%s-%d", kind, len(out)+1)
		}
		if seen[name] {
			return nil, fmt.Errorf("provider %q is listed twice", name)
		}
		seen[name] = true
		switch {
		case u == "" && kind == ProviderPaysim:
			return nil, fmt.Errorf("provider %q: paysim needs a URL", name)
		case u != "":
			if err := checkURL(u, "http", "https"); err != nil {
				return nil, fmt.Errorf("provider %q: %w", name, err)
			}
		}
		out = append(out, Provider{Name: name, Kind: kind, URL: u})
	}
	if len(out) == 0 {
		return nil, errors.New("lists no provider")
	}
	return out, nil
}}

// piiKeys checks kid:base64key pairs as the keyring reads them: ids, base64
// and 32-byte keys. Its errors name key ids, never key material.
func piiKeys(s string) error {
	keys, order, err := pii.Parse(s)
	if err != nil || len(order) == 0 {
		return err
	}
	_, err = pii.New(keys, order[len(order)-1])
	return err
}

// nonEmpty refuses a value of only blanks (an explicit default of "" is
// never parsed).
func nonEmpty(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("must not be empty")
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// name refuses what cannot stand in a task queue or an identifier: letters,
// digits, '.', '_' and '-' only.
func name(s string) error {
	if !nameRE.MatchString(s) {
		return errors.New("must be letters, digits, '.', '_' or '-'")
	}
	return nil
}

// providerSecrets reads "provider=secret,...": provider names unique,
// secrets of at least 16 bytes. Its messages name the entry by its
// provider, never by its secret.
var providerSecrets = parser[[]string]{kind: "list of provider=secret", parse: func(raw string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for i, s := range strings.Split(raw, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		provider, secret, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("entry %d: must be provider=secret", i+1)
		}
		if err := name(provider); err != nil {
			return nil, fmt.Errorf("entry %d: provider %w", i+1, err)
		}
		if seen[provider] {
			return nil, fmt.Errorf("provider %s: given twice", provider)
		}
		seen[provider] = true
		if err := minLen(16)(secret); err != nil {
			return nil, fmt.Errorf("provider %s: secret %w", provider, err)
		}
		out = append(out, s)
	}
	return out, nil
}}

// minLen refuses a value shorter than n bytes; the message gives the
// length, never the value.
func minLen(n int) func(string) error {
	return func(s string) error {
		if len(s) < n {
			return fmt.Errorf("is %d bytes, want at least %d", len(s), n)
		}
		return nil
	}
}
