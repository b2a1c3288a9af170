package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/idempotency"
	"github.com/shoalcrm/shoal/internal/jobs"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// TestIdempotencyPurgeJob: the purge job deletes the stored answers older
// than 24 hours (by the injected clock) and keeps the others.
func TestIdempotencyPurgeJob(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		cfg := testConfig()
		clk := &clock.Adjustable{}
		cfg.Clock = clk
		env := apitest.New(t, url, apitest.Options{Config: cfg})
		ctx := context.Background()
		st, answers := env.App.Store, env.App.Idempotency
		write := func(key string) {
			k := answers.KeyOf("user:test", key, "POST", "/v1/leads", "", []byte(key))
			if err := st.WithTx(ctx, func(tx *ent.Tx) error {
				return answers.Write(ctx, tx, k, idempotency.Answer{Status: 201, Body: []byte(`{}`)})
			}); err != nil {
				t.Fatal(err)
			}
		}
		write("old")
		clk.Advance(23 * time.Hour)
		write("young")
		clk.Advance(time.Hour + time.Second)
		if err := st.WithTx(ctx, func(tx *ent.Tx) error {
			return env.App.Jobs.Enqueue(ctx, tx, jobs.IdempotencyPurgeArgs{})
		}); err != nil {
			t.Fatal(err)
		}
		env.WorkJobs()
		if n, err := st.Reader.IdempotencyRecord.Query().Count(ctx); err != nil || n != 1 {
			t.Fatalf("%d answers after the purge (%v), want the young one", n, err)
		}
	})
}
