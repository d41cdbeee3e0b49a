package lab

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Ports names a stack's ports: "api" -> 8080.
type Ports map[string]int

// PortMode says how Allocate picks ports: the documented defaults, base+i
// for the i-th name, or ports the kernel reports free.
type PortMode struct {
	Kind string // "default", "base" or "free"
	Base int
}

// ParsePortMode reads "default", "free" or "base:N".
func ParsePortMode(s string) (PortMode, error) {
	switch {
	case s == "" || s == "default":
		return PortMode{Kind: "default"}, nil
	case s == "free":
		return PortMode{Kind: "free"}, nil
	case strings.HasPrefix(s, "base:"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "base:"))
		if err != nil || n < 1024 || n > 65000 {
			return PortMode{}, fmt.Errorf("ports %q: base must be a number in 1024-65000", s)
		}
		return PortMode{Kind: "base", Base: n}, nil
	}
	return PortMode{}, fmt.Errorf("ports %q: want default, free or base:N", s)
}

// Allocate gives each name a port: an override when there is one, else as
// mode says. Free ports are held open until all are chosen, so no two names
// get the same one.
func Allocate(names []string, defaults Ports, mode PortMode, overrides Ports) (Ports, error) {
	out := Ports{}
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for i, name := range names {
		if p, ok := overrides[name]; ok {
			out[name] = p
			continue
		}
		switch mode.Kind {
		case "default", "":
			p, ok := defaults[name]
			if !ok {
				return nil, fmt.Errorf("ports: no default port for %s", name)
			}
			out[name] = p
		case "base":
			out[name] = mode.Base + i
		case "free":
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, fmt.Errorf("ports: a free port for %s: %w", name, err)
			}
			held = append(held, l)
			out[name] = l.Addr().(*net.TCPAddr).Port
		default:
			return nil, fmt.Errorf("ports: unknown mode %q", mode.Kind)
		}
	}
	seen := map[int]string{}
	for _, name := range names {
		if other, ok := seen[out[name]]; ok {
			return nil, fmt.Errorf("ports: %s and %s both got port %d", other, name, out[name])
		}
		seen[out[name]] = name
	}
	return out, nil
}
