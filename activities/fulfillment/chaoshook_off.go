//go:build !chaoshooks

package fulfillment

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// chaosFault is the product build's no-op: only the chaos stack's binary,
// built with -tags chaoshooks, fails steps on purpose (chaoshook.go).
func chaosFault(context.Context, pgx.Tx, string, string) error { return nil }
