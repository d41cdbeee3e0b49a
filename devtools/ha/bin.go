package ha

import (
	"context"

	"github.com/orderflow/orderflow/devtools/lab"
)

// Binaries are the pinned Temporal programs the cluster runs
// (lab.TemporalBinaries, which the regions profile shares).
type Binaries = lab.TemporalBinaries

// FindBinaries returns the cached builds, building those that are missing
// (lab.FindTemporalBinaries).
func FindBinaries(ctx context.Context, root string) (Binaries, error) {
	return lab.FindTemporalBinaries(ctx, root)
}
