package lab

import "sort"

// Config is what a stack is built from; it is saved in the state file, so
// that `down`, chaos and bench rebuild the same topology.
type Config struct {
	Profile string `json:"profile"`
	Root    string `json:"root"` // the checkout
	Data    string `json:"data"` // the stack's files: logs, state, databases
	Ports   Ports  `json:"ports"`
	// Env is the environment the stack's processes were given on top of
	// the lab's own (DATABASE_URL, REDIS_URL, ...), so that a node started
	// again from another process runs as it first did.
	Env map[string]string `json:"env,omitempty"`
	// Network, when set, is where the nodes that name a namespace (Node.Netns)
	// live.
	Network *Network `json:"network,omitempty"`
	// TemporalBackend is "dev" (the CLI's dev server, make run's) or
	// "cluster" (two servers on PostgreSQL behind HAProxy: devtools/ha).
	TemporalBackend string `json:"temporal_backend,omitempty"`
	// Topology is empty for the single-node stack, or a topology devtools/ha
	// registered ("ha": every node a host of its own).
	Topology string `json:"topology,omitempty"`
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
