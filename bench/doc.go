// Package bench measures Shoal through its real HTTP stack against raw SQL
// baselines run on the same database in the same process, so results can be
// quoted as ratios (see docs/performance.md).
//
// The benchmarks run at a small size by default, which TestBenchmarksSmall
// also exercises so they keep working; SHOAL_BENCH_FULL=1 selects the sizes
// the targets are stated for. They are meant to be run once per size:
//
//	SHOAL_BENCH_FULL=1 go test ./bench -run '^$' -bench . -benchtime 1x -timeout 60m
package bench
