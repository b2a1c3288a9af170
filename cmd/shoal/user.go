package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/store"
)

// userCommand implements `shoal user create`. The password is read from
// standard input so that it never appears in the process list or shell
// history.
func userCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: shoal user create --email E --role R [--name N] [--team-id T] --password-stdin")
	}
	fs := flag.NewFlagSet("user create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs, getenv)
	email := fs.String("email", "", "email (required)")
	role := fs.String("role", "rep", "rep, supervisor, auditor or admin")
	name := fs.String("name", "", "display name (defaults to the email's local part)")
	teamID := fs.String("team-id", "", "team id")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input (required)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *email == "" || !*fromStdin {
		return errors.New("--email and --password-stdin are required")
	}
	switch *role {
	case "rep", "supervisor", "auditor", "admin":
	default:
		return fmt.Errorf("unknown role %q", *role)
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if *name == "" {
		*name, _, _ = strings.Cut(*email, "@")
	}
	in := org.NewUser{Email: *email, Name: *name, Role: *role, Password: password}
	if *teamID != "" {
		id, err := uuid.Parse(*teamID)
		if err != nil {
			return fmt.Errorf("--team-id: %w", err)
		}
		in.TeamID = &id
	}
	st, err := store.Open(ctx, c.databaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	u, err := org.NewService(st).CreateUser(ctx, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s %s (%s)\n", u.Role, u.Email, u.ID)
	return nil
}
