package apitest_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(apitest.Main(m)) }

// A fresh test database is given the schema from the template once; a
// database already filled (a second replica on it) or not made by testdb is
// left alone, so the caller migrates it as before; and a Shoal started on a
// cloned database works: a user is created, logs in and reads /v1/me.
func TestFromTemplate(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		cloned, err := testdb.FromTemplate(ctx, databaseURL, apitest.Migrate)
		if err != nil || !cloned {
			t.Fatalf("FromTemplate on a fresh database = %v, %v; want true", cloned, err)
		}
		again, err := testdb.FromTemplate(ctx, databaseURL, apitest.Migrate)
		if err != nil || again {
			t.Fatalf("FromTemplate on a filled database = %v, %v; want false", again, err)
		}
		env := apitest.New(t, databaseURL)
		u, rep := env.User("rep", nil)
		rep.Do("GET", "/v1/me", nil).Expect(http.StatusOK)
		// A replica on the same database migrates (a no-op) and sees the data.
		replica := apitest.New(t, databaseURL)
		replica.Login(u.Email, apitest.Password).Do("GET", "/v1/me", nil).Expect(http.StatusOK)
	})
	t.Run("not ours", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "other.db")
		other := "sqlite:" + path
		cloned, err := testdb.FromTemplate(context.Background(), other, apitest.Migrate)
		if err != nil || cloned {
			t.Fatalf("FromTemplate on a database testdb did not make = %v, %v; want false", cloned, err)
		}
		if _, err := os.Stat(path); err == nil {
			t.Fatal("FromTemplate created a database it does not own")
		}
	})
}
