package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/demo"
	"github.com/shoalcrm/shoal/internal/store"
)

// seed implements `shoal seed --demo`: a realistic data set to explore the
// API with, loaded through the same services as the API.
func seed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs, getenv)
	demoFlag := fs.Bool("demo", false, "load the demo data set (required)")
	leads := fs.Int("leads", 3000, "number of demo leads")
	customers := fs.Int("customers", 2000, "number of demo customers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*demoFlag {
		return errors.New("usage: shoal seed --demo [--leads N] [--customers N]")
	}
	st, err := store.Open(ctx, c.databaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	a, err := app.New(ctx, st, app.Config{Logger: c.logger(stderr)})
	if err != nil {
		return err
	}
	return demo.Load(ctx, a, *leads, *customers, func(line string) { fmt.Fprintln(stdout, line) })
}
