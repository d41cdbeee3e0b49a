// Package config declares every setting of orderflow's product binary once:
// its environment variable, default, type and validator, whether it is a
// secret, a one-line description and which components read it. The
// declarations in settings.go are the only list: `orderflow config` prints
// the effective values from them (secrets masked), docs/configuration.md is
// generated from them, and start-up parses them strictly: a value that does
// not parse or validate stops the process with a message naming the variable
// (never echoing a secret), all bad values reported together. Nothing falls
// back to the default on a bad value.
//
// Only cmd/orderflow and internal/boot import this package (and the dev
// tools, which share the product's settings). They build each consumer's
// own small Config (api.Config, workers.Config, auth.Config, pii.Config,
// temporal.Config, health.Config ...) from the values:
//
//	v := config.Load(os.LookupEnv, config.Worker)
//	cfg := workers.Config{MaxConcurrentActivities: config.WorkerMaxActivities.Get(v), ...}
//	if err := v.Err(); err != nil { ... } // every bad value, together
//
// Adding a setting is one declaration in settings.go and one field in the
// consuming package's Config:
//
//	// settings.go: name, default, components, docs section, description, and
//	// the parser with its check (types.go); Secret: Secret when it is one.
//	SMTPAddr = declare(Setting{Name: "SMTP_ADDR", Default: "127.0.0.1:1025", Used: Worker, Section: secMail,
//		Doc: "the SMTP server the outbox delivers through"}, address(false))
//
//	// cmd/orderflow/config.go (internal/boot for plumbing), where the
//	// consumer's Config is built:
//	Mail: notify.SMTPConfig{Addr: config.SMTPAddr.Get(v)},
//
// A new docs section goes into Sections. Then `go generate ./internal/config`
// regenerates docs/configuration.md; a test fails while the committed file
// differs, and a test in cmd/orderflow fails while a component reads a
// setting not declared for it, or is declared to read one it does not.
package config

//go:generate go run ./gendocs ../../docs/configuration.md

import (
	"fmt"
	"sort"
	"strings"
)

// Component is a set of the product binary's subcommands, as a bit mask.
type Component uint

// The components that read settings.
const (
	API Component = 1 << iota
	Worker
	Migrate
	Replay
	Token
	// Failover is `orderflow failover` and `orderflow redrive`.
	Failover
	// All is every component.
	All = API | Worker | Migrate | Replay | Token | Failover
)

var componentNames = []string{"api", "worker", "migrate", "replay", "token", "failover"}

// ParseComponent returns the component named name (api, worker, migrate,
// replay, token, failover).
func ParseComponent(name string) (Component, error) {
	for i, n := range componentNames {
		if n == name {
			return 1 << i, nil
		}
	}
	return 0, fmt.Errorf("unknown component %q (want one of %s)", name, strings.Join(componentNames, ", "))
}

// String lists the components in c, comma separated.
func (c Component) String() string {
	var out []string
	for i, n := range componentNames {
		if c&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
}

// Secrecy says how much of a value may be shown.
type Secrecy int

// Levels of secrecy.
const (
	// Public values are shown as they are, and echoed in errors.
	Public Secrecy = iota
	// Password marks a URL whose password is masked when shown; a bad value
	// is not echoed.
	Password
	// Secret values are never shown nor echoed: only whether they are set.
	Secret
)

// Setting is one declared setting. The declarations in settings.go fill it;
// Var wraps it with its type.
type Setting struct {
	// Name is the environment variable.
	Name string
	// Default is the value used when the variable is unset or blank, as it
	// would be written in the environment; "" means none.
	Default string
	// Doc is a one-line description for `orderflow config` and the docs.
	Doc string
	// Used is the set of components that read the setting.
	Used Component
	// Secret says how much of the value may be shown.
	Secret Secrecy
	// Section groups the setting in the docs.
	Section string

	kind  string // the type, as the docs name it
	parse func(raw string) (any, error)
}

// Kind names the setting's type (integer, duration, URL ...).
func (s *Setting) Kind() string { return s.kind }

// Show renders raw as it may be shown: a secret as "(set)", a URL with its
// password masked.
func (s *Setting) Show(raw string) string {
	switch {
	case raw == "":
		return ""
	case s.Secret == Secret:
		return "(set)"
	case s.Secret == Password:
		return maskURL(raw)
	}
	return raw
}

// Var is a declared setting of type T.
type Var[T any] struct{ s *Setting }

// registry holds every declaration.
var registry []*Setting

// declare registers s, parsed and validated by p.
func declare[T any](s Setting, p parser[T]) Var[T] {
	s.kind = p.kind
	s.parse = func(raw string) (any, error) { return p.parse(raw) }
	registry = append(registry, &s)
	return Var[T]{&s}
}

// Settings returns every declared setting, by section (in the order of
// Sections) and name. Declaration order is not kept: Go initialises package
// variables in the order of their dependencies, not as written.
func Settings() []*Setting {
	rank := map[string]int{}
	for i, s := range Sections {
		rank[s] = i
	}
	out := append([]*Setting(nil), registry...)
	sort.Slice(out, func(i, j int) bool {
		if a, b := rank[out[i].Section], rank[out[j].Section]; a != b {
			return a < b
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Lookup returns the setting whose variable is name.
func Lookup(name string) (*Setting, bool) {
	for _, s := range registry {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}

// Setting returns the declaration.
func (x Var[T]) Setting() *Setting { return x.s }

// Default returns the declared default, parsed. Declared defaults are
// checked by the package's tests, so it panics only on a broken declaration.
func (x Var[T]) Default() T {
	var zero T
	if x.s.Default == "" {
		return zero
	}
	v, err := x.s.parse(x.s.Default)
	if err != nil {
		panic(fmt.Sprintf("config: the default of %s does not parse: %v", x.s.Name, err))
	}
	return v.(T)
}

// Get returns the setting's value in v. A setting v did not load (one not
// declared for v's components) is parsed now; a bad value then joins v.Err
// and Get returns the zero value, never the default.
func (x Var[T]) Get(v *Values) T {
	v.read[x.s] = true
	return x.peek(v)
}

// peek is Get without recording the read: the rules use it.
func (x Var[T]) peek(v *Values) T {
	val := v.value(x.s)
	if val.err != nil || val.parsed == nil {
		var zero T
		return zero
	}
	return val.parsed.(T)
}

// Parse parses and checks raw as the setting's value, for a flag that
// overrides it. The error does not repeat raw.
func (x Var[T]) Parse(raw string) (T, error) {
	var zero T
	v, err := x.s.parse(strings.TrimSpace(raw))
	if err != nil {
		return zero, err
	}
	return v.(T), nil
}

// Value is one setting as Load found it.
type Value struct {
	Setting *Setting
	// Raw is the value in force, as written (the default when FromEnv is
	// false).
	Raw string
	// FromEnv is true when the environment set the value.
	FromEnv bool
	parsed  any
	err     error
}

// Source is "env" or "default".
func (v Value) Source() string {
	if v.FromEnv {
		return "env"
	}
	return "default"
}

// Err is the value's problem, nil when it parsed and validated.
func (v Value) Err() error { return v.err }

// Values are the settings of one process, read from its environment.
type Values struct {
	lookup func(string) (string, bool)
	used   Component
	vals   map[*Setting]*Value
	read   map[*Setting]bool
	rules  []error
}

// Load reads and checks every setting declared for the components in c from
// lookup (os.LookupEnv; a blank value counts as unset), then the rules that
// tie settings together. Problems are kept, not returned: Err reports them
// all once the caller has built its configuration.
func Load(lookup func(string) (string, bool), c Component) *Values {
	v := &Values{lookup: lookup, used: c, vals: map[*Setting]*Value{}, read: map[*Setting]bool{}}
	for _, s := range registry {
		if s.Used&c != 0 {
			v.value(s)
		}
	}
	for _, r := range rules {
		if r.used&c == 0 {
			continue
		}
		if err := r.check(v); err != nil {
			v.rules = append(v.rules, err)
		}
	}
	return v
}

// Components are the components v was loaded for.
func (v *Values) Components() Component { return v.used }

func (v *Values) value(s *Setting) *Value {
	if val, ok := v.vals[s]; ok {
		return val
	}
	val := &Value{Setting: s, Raw: s.Default}
	if raw, ok := v.lookup(s.Name); ok && strings.TrimSpace(raw) != "" {
		val.Raw, val.FromEnv = strings.TrimSpace(raw), true
	}
	if val.Raw != "" {
		val.parsed, val.err = s.parse(val.Raw)
	}
	v.vals[s] = val
	return val
}

// All returns the values of the settings v loaded or was asked for, in the
// order of Settings.
func (v *Values) All() []Value {
	var out []Value
	for _, s := range Settings() {
		if val, ok := v.vals[s]; ok {
			out = append(out, *val)
		}
	}
	return out
}

// FromEnv lists the settings the environment set, as NAME=value with
// secrets masked, for a start-up log line.
func (v *Values) FromEnv() []string {
	var out []string
	for _, val := range v.All() {
		if val.FromEnv {
			out = append(out, val.Setting.Name+"="+val.Setting.Show(val.Raw))
		}
	}
	return out
}

// Read returns the settings Get was called on, sorted by name.
func (v *Values) Read() []*Setting {
	out := make([]*Setting, 0, len(v.read))
	for s := range v.read {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Err returns every problem found: each value that did not parse or
// validate, named by its variable (with the value unless it is secret), and
// each broken rule. Nil when there is none.
func (v *Values) Err() error {
	var problems []string
	for _, val := range v.All() {
		if val.err == nil {
			continue
		}
		if val.Setting.Secret == Public {
			problems = append(problems, fmt.Sprintf("%s=%q: %v", val.Setting.Name, val.Raw, val.err))
		} else {
			problems = append(problems, fmt.Sprintf("%s (value not shown): %v", val.Setting.Name, val.err))
		}
	}
	for _, err := range v.rules {
		problems = append(problems, err.Error())
	}
	if len(problems) == 0 {
		return nil
	}
	return &Error{Problems: problems}
}

// Error is a configuration that cannot run: one line per problem.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// rule ties settings together: it runs at Load for the components in used,
// once the settings it reads parsed.
type rule struct {
	used  Component
	check func(v *Values) error
}
