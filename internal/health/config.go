package health

import "time"

// Config sets a process's health checks: the budget of one run of GET
// /health, and the thresholds of the disk and memory checks.
// internal/config declares the settings that fill it.
type Config struct {
	// Budget bounds one run of the checks.
	Budget time.Duration
	// DiskPath is the file system the disk check watches; it fails below
	// MinFreeDiskMB free.
	DiskPath      string
	MinFreeDiskMB int
	// MaxHeapMB is the Go heap above which the memory check fails.
	MaxHeapMB int
}

// The design's thresholds, which a zero Config field takes (WithDefaults);
// internal/config declares the same defaults, and its tests check they agree.
const (
	DefaultBudget        = 3 * time.Second
	DefaultDiskPath      = "/"
	DefaultMinFreeDiskMB = 512
	DefaultMaxHeapMB     = 1024
)

// WithDefaults returns c with each zero field set to the design's default.
func (c Config) WithDefaults() Config {
	if c.Budget <= 0 {
		c.Budget = DefaultBudget
	}
	if c.DiskPath == "" {
		c.DiskPath, c.MinFreeDiskMB = DefaultDiskPath, DefaultMinFreeDiskMB
	}
	if c.MaxHeapMB <= 0 {
		c.MaxHeapMB = DefaultMaxHeapMB
	}
	return c
}

// Checks returns the checks every process runs besides its own: disk and
// memory as c sets them.
func (c Config) Checks() []Check {
	return []Check{Disk(c.DiskPath, c.MinFreeDiskMB), Memory(c.MaxHeapMB)}
}
