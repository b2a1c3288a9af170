package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// stmtCacheSize bounds the prepared statements kept per connection. Shoal
// sends a few hundred distinct statements at most (ent writes the same text
// for the same query shape), so the cache rarely evicts.
const stmtCacheSize = 512

// cachingConnector opens SQLite connections that keep their prepared
// statements. modernc.org/sqlite parses every statement database/sql hands
// it without a prepared *sql.Stmt, and ent never prepares: parsing was a
// fifth of the CPU of a claim, spent while holding the one writer
// connection. A statement prepared once per connection and reused is parsed
// once.
type cachingConnector struct {
	dsn string
	drv driver.Driver
	// outside, when set (on the writer), is called at the start of a
	// transaction when another connection may have committed since the
	// connection's previous transaction (see cachingConn.BeginTx).
	outside func()
}

func (c cachingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	cc, err := newCachingConn(conn)
	if err != nil {
		return nil, err
	}
	cc.outside = c.outside
	return cc, nil
}

func (c cachingConnector) Driver() driver.Driver { return c.drv }

// cachingConn is a SQLite connection with a statement cache. database/sql
// never uses one connection from two goroutines at once, so the cache needs
// no lock; a statement can still be in use by open rows when the same text
// runs again (a query inside the loop over another's rows), and then the
// second run gets a statement of its own.
type cachingConn struct {
	base  driver.Conn
	prep  driver.ConnPrepareContext
	begin driver.ConnBeginTx
	stmts map[string]*cachedStmt

	// outside and the fields after it watch PRAGMA data_version, which
	// moves when a connection other than this one commits: another
	// process (the CLI, a second tool) or another connection of this one.
	outside     func()
	versionStmt driver.StmtQueryContext
	versionSeen bool
	version     int64
}

type cachedStmt struct {
	stmt  driver.Stmt
	exec  driver.StmtExecContext
	query driver.StmtQueryContext
	busy  bool
}

func newCachingConn(base driver.Conn) (*cachingConn, error) {
	prep, ok1 := base.(driver.ConnPrepareContext)
	begin, ok2 := base.(driver.ConnBeginTx)
	if !ok1 || !ok2 {
		_ = base.Close()
		return nil, errors.New("sqlite driver lacks PrepareContext or BeginTx")
	}
	return &cachingConn{base: base, prep: prep, begin: begin, stmts: map[string]*cachedStmt{}}, nil
}

// cacheable reports whether query is a single data statement worth
// keeping. Schema changes, pragmas and transaction control run uncached.
func cacheable(query string) bool {
	q := strings.TrimSpace(query)
	if len(q) < 6 || strings.Contains(strings.TrimRight(q, "; \t\n"), ";") {
		return false
	}
	switch strings.ToUpper(q[:6]) {
	case "SELECT", "INSERT", "UPDATE", "DELETE":
		return true
	}
	return strings.EqualFold(q[:4], "WITH")
}

// get returns the idle cached statement for query, preparing it if needed,
// or nil when query should run uncached.
func (c *cachingConn) get(ctx context.Context, query string) (*cachedStmt, error) {
	if !cacheable(query) {
		return nil, nil
	}
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			return nil, nil
		}
		return s, nil
	}
	st, err := c.prep.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	exec, ok1 := st.(driver.StmtExecContext)
	qry, ok2 := st.(driver.StmtQueryContext)
	if !ok1 || !ok2 {
		_ = st.Close()
		return nil, nil
	}
	if len(c.stmts) >= stmtCacheSize {
		c.evictIdle()
	}
	s := &cachedStmt{stmt: st, exec: exec, query: qry}
	c.stmts[query] = s
	return s, nil
}

// evictIdle drops one idle statement (any: shapes that are used often are
// prepared again at once).
func (c *cachingConn) evictIdle() {
	for q, s := range c.stmts {
		if !s.busy {
			_ = s.stmt.Close()
			delete(c.stmts, q)
			return
		}
	}
}

// drop forgets a statement that failed, in case the failure left it
// unusable (a schema change under it, say).
func (c *cachingConn) drop(query string, s *cachedStmt) {
	if c.stmts[query] == s {
		delete(c.stmts, query)
	}
	_ = s.stmt.Close()
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.get(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.base.(driver.ExecerContext).ExecContext(ctx, query, args)
	}
	s.busy = true
	res, err := s.exec.ExecContext(ctx, args)
	s.busy = false
	if err != nil && !isConstraint(err) {
		c.drop(query, s)
	}
	return res, err
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.get(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.base.(driver.QueryerContext).QueryContext(ctx, query, args)
	}
	s.busy = true
	rows, err := s.query.QueryContext(ctx, args)
	if err != nil {
		s.busy = false
		c.drop(query, s)
		return nil, err
	}
	return &cachedRows{Rows: rows, s: s}, nil
}

// isConstraint reports a constraint violation: the statement is fine, the
// data was not, so it stays cached.
func isConstraint(err error) bool {
	return IsConstraint(err)
}

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) {
	return c.prep.PrepareContext(context.Background(), query)
}

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.prep.PrepareContext(ctx, query)
}

func (c *cachingConn) Begin() (driver.Tx, error) { //nolint:staticcheck // required by driver.Conn
	return c.begin.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.begin.BeginTx(ctx, opts)
	if err != nil || c.outside == nil {
		return tx, err
	}
	// The writer's transactions begin IMMEDIATE: from here to the end no
	// other connection can commit, so one look at the start of each
	// transaction is enough to know whether anything read before it
	// may have changed.
	v, err := c.dataVersion(ctx)
	if err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	if !c.versionSeen || v != c.version {
		// A new connection has no earlier value to compare with: as
		// far as it knows, anything may have changed.
		c.outside()
	}
	c.versionSeen, c.version = true, v
	return tx, nil
}

// dataVersion reads PRAGMA data_version through a statement prepared once
// per connection: it is read at the start of every write transaction.
func (c *cachingConn) dataVersion(ctx context.Context) (int64, error) {
	if c.versionStmt == nil {
		st, err := c.prep.PrepareContext(ctx, "PRAGMA data_version")
		if err != nil {
			return 0, fmt.Errorf("prepare data_version: %w", err)
		}
		q, ok := st.(driver.StmtQueryContext)
		if !ok {
			_ = st.Close()
			return 0, errors.New("sqlite driver lacks StmtQueryContext")
		}
		c.versionStmt = q
	}
	rows, err := c.versionStmt.QueryContext(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("read data_version: %w", err)
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return 0, fmt.Errorf("read data_version: %w", err)
	}
	v, ok := dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("read data_version: unexpected %T", dest[0])
	}
	return v, nil
}

func (c *cachingConn) Close() error {
	for q, s := range c.stmts {
		_ = s.stmt.Close()
		delete(c.stmts, q)
	}
	if st, ok := c.versionStmt.(driver.Stmt); ok {
		_ = st.Close()
	}
	return c.base.Close()
}

func (c *cachingConn) Ping(ctx context.Context) error {
	if p, ok := c.base.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.base.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.base.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// cachedRows hands its statement back to the cache when closed.
type cachedRows struct {
	driver.Rows
	s *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.s.busy = false
	return err
}

// The column-type methods are forwarded so that sql.Rows.ColumnTypes sees
// what the driver knows.

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
