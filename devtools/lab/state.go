package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// State is what a running stack looks like on disk: its configuration (so
// another process can rebuild the same topology) and, per node, whether the
// lab started it and which process runs it.
type State struct {
	Config Config                `json:"config"`
	Nodes  map[string]*NodeState `json:"nodes"`
}

// NodeState is one node of a running stack.
type NodeState struct {
	// Started: the lab started this node and stops it at down. A node that
	// already answered (a shared PostgreSQL) is used, never stopped.
	Started bool   `json:"started"`
	Pid     int    `json:"pid,omitempty"` // leader of its process group
	Log     string `json:"log,omitempty"`
}

// StatePath is where the stack under data keeps its state.
func StatePath(data string) string { return filepath.Join(data, "run", "lab.json") }

// LoadState reads the state of the stack under data.
func LoadState(data string) (*State, error) {
	b, err := os.ReadFile(StatePath(data))
	if err != nil {
		return nil, fmt.Errorf("lab state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("lab state %s: %w", StatePath(data), err)
	}
	if s.Nodes == nil {
		s.Nodes = map[string]*NodeState{}
	}
	return &s, nil
}

// Save writes the state atomically (a reader never sees half a file).
func (s *State) Save(data string) error {
	path := StatePath(data)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("lab state: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("lab state: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("lab state: %w", err)
	}
	return os.Rename(tmp, path)
}

// LoadTopology is the configuration of the stack running under data, which
// must be of the topology name (a profile's LoadProfile rebuilds it from
// there).
func LoadTopology(data, name string) (Config, error) {
	data, _ = filepath.Abs(data)
	st, err := LoadState(data)
	if err != nil {
		return Config{}, err
	}
	if st.Config.Topology != name {
		return Config{}, fmt.Errorf("lab: the stack under %s is not the %s profile (topology %q)", data, name, st.Config.Topology)
	}
	return st.Config, nil
}
