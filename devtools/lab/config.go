package lab

import "sort"

// Config is what a stack is built from; it is saved in the state file, so
// that `down`, chaos and bench rebuild the same topology.
type Config struct {
	Profile string `json:"profile"`
	Root    string `json:"root"` // the checkout
	Data    string `json:"data"` // the stack's files: logs, state, databases
	Ports   Ports  `json:"ports"`
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
