package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

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
	leads := fs.Int("leads", 300, "number of pooled demo leads (owned ones come on top)")
	customers := fs.Int("customers", 150, "number of pooled demo customers (owned ones come on top)")
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
	started := time.Now()
	_, err = demo.Load(ctx, st, demo.Options{Leads: *leads, Customers: *customers, Logger: c.logger(stderr)},
		func(line string) { fmt.Fprintln(stdout, line) })
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "demo loaded in %s into %s; start the server and log in as %s (password %s)\n",
		time.Since(started).Round(100*time.Millisecond), databaseLocation(c.databaseURL), demo.AdminEmail, demo.Password)
	return nil
}
