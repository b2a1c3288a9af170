package store

import (
	"context"
	"sync/atomic"

	"github.com/shoalcrm/shoal/ent"
)

// ruleWatch counts changes to the rows every ownership operation reads but
// that rarely change: pools, the global settings and teams. On SQLite every
// write of this process goes through its one writer, so a count that has
// not moved since a row was read inside a write transaction means the row
// is still what that transaction read, and a later transaction may use it
// without reading it again (see RulesGeneration). Writes of other
// processes on the same file (`shoal user create`, `shoal seed`, any other
// tool) are not seen by the hook; the writer connection notices them by
// its data_version at the start of each transaction and moves the count
// too (outside).
type ruleWatch struct {
	gen atomic.Uint64
	// dirty is set when a watched row was written in the transaction
	// running now: its end (commit or rollback) moves gen again, since a
	// value read after the write but before the end may be rolled back.
	dirty atomic.Bool
}

// hook moves the count before and after every write of a watched row, and
// marks the transaction it runs in, if any.
func (w *ruleWatch) hook(next ent.Mutator) ent.Mutator {
	return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
		switch m.Type() {
		case ent.TypePool, ent.TypeSetting, ent.TypeTeam:
		default:
			return next.Mutate(ctx, m)
		}
		if tm, ok := m.(interface{ Tx() (*ent.Tx, error) }); ok {
			if _, err := tm.Tx(); err == nil {
				w.dirty.Store(true)
			}
		}
		w.gen.Add(1)
		defer w.gen.Add(1)
		return next.Mutate(ctx, m)
	})
}

// outside is told, at the start of a write transaction, that another
// connection may have committed since the writer's last transaction: any
// of the watched rows may have changed.
func (w *ruleWatch) outside() { w.gen.Add(1) }

// ended is told of the end of every write transaction.
func (w *ruleWatch) ended() {
	if w.dirty.Swap(false) {
		w.gen.Add(1)
	}
}

// RulesGeneration returns a number that moves whenever a pool, the global
// settings or a team may have changed. A pool, settings or team read
// inside a write transaction may be kept and used by later transactions
// for as long as the number is the one taken before the read. ok is false
// on PostgreSQL, where other replicas write too: there, nothing may be
// kept.
func (s *Store) RulesGeneration() (gen uint64, ok bool) {
	if s.rules == nil {
		return 0, false
	}
	return s.rules.gen.Load(), true
}
