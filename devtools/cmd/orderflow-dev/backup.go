package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/orderflow/orderflow/devtools/backup"
)

// runDrill runs the restore drill (devtools/backup.Drill) on a stack of
// its own and fails when a check does not hold.
func runDrill(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	d := backup.Drill{Root: root, Out: os.Stdout}
	fs.StringVar(&d.Data, "data", filepath.Join(root, ".data", "drill"), "the drill's files (removed first)")
	fs.IntVar(&d.TemporalPortBase, "temporal-port-base", 0, "13 ports from this one for the Temporal server (0: free ones)")
	fs.IntVar(&d.Batch, "batch", 8, "orders placed in each step")
	results := fs.String("results", filepath.Join(root, "backup", "results"), "directory for the JSON report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := flagsFromEnv(fs, "DRILL_"); err != nil {
		return err
	}
	rep, err := d.Run(ctx)
	rep.Print(os.Stdout)
	if err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	path, err := rep.Write(*results)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s\n", path)
	if !rep.Passed {
		return errors.New("drill: a check does not hold on the restored stack")
	}
	return nil
}
