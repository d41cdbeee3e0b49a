// Package regions holds the infrastructure steps of a region failover that
// orderflow's own commands run (orderflow failover): promoting the standby
// that holds a lost region's database, dropping the lost region's standby
// from a survivor's synchronous_standby_names, and switching a global
// namespace's active Temporal cluster. Each step is idempotent: run again
// after a failover that stopped half way, it does what is left and reports
// what it changed (docs/regions.md).
package regions

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
)

// Statements of the PostgreSQL steps. ALTER SYSTEM takes no bind
// parameter: pgx's simple protocol puts the value in as a quoted literal.
const (
	qInRecovery      = `SELECT pg_is_in_recovery()`
	qPromote         = `SELECT pg_promote(true, $1)`
	qSyncNames       = `SELECT current_setting('synchronous_standby_names')`
	qSetSyncNames    = `ALTER SYSTEM SET synchronous_standby_names = $1`
	qReloadConf      = `SELECT pg_reload_conf()`
	qStreamingNamed  = `SELECT sync_state FROM pg_stat_replication WHERE lower(application_name) = lower($1) AND state = 'streaming'`
	promoteWaitLimit = 60 // seconds pg_promote waits for the end of recovery
)

// Promote makes the standby at dsn a primary with pg_promote and returns
// once it takes writes. A server that is already a primary is left as it
// is: promoted is then false. dsn needs a role allowed to run pg_promote
// (a superuser, or one granted EXECUTE on it).
func Promote(ctx context.Context, dsn string) (promoted bool, err error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return false, fmt.Errorf("promote: %w", err)
	}
	defer conn.Close(context.Background())
	var recovering bool
	if err := conn.QueryRow(ctx, qInRecovery).Scan(&recovering); err != nil {
		return false, fmt.Errorf("promote: %w", err)
	}
	if !recovering {
		return false, nil
	}
	var done bool
	if err := conn.QueryRow(ctx, qPromote, promoteWaitLimit).Scan(&done); err != nil {
		return false, fmt.Errorf("promote: pg_promote: %w", err)
	}
	if !done {
		return false, fmt.Errorf("promote: recovery did not end within %d s", promoteWaitLimit)
	}
	if err := conn.QueryRow(ctx, qInRecovery).Scan(&recovering); err != nil || recovering {
		return false, fmt.Errorf("promote: still in recovery after pg_promote (%v)", err)
	}
	return true, nil
}

// DropSyncStandby removes the standby called name (its application_name:
// in orderflow's regions, the region it lives in) from the
// synchronous_standby_names of the primary at dsn, reloads the
// configuration and returns once the server runs with the new list, so
// that commits which waited for that standby go on. It returns the list it
// set; a name the list does not hold changes nothing. dsn needs a
// superuser (ALTER SYSTEM).
func DropSyncStandby(ctx context.Context, dsn, name string) (string, error) {
	return changeSyncNames(ctx, dsn, func(l SyncStandbys) (SyncStandbys, bool) { return l.Without(name), l.Has(name) })
}

// RequireSyncStandby adds the standby called name to the primary's
// synchronous_standby_names (once the standby is back, after a failback),
// reloads the configuration and returns once the server runs with it: from
// then on a commit waits for that standby too. It returns the list it set.
func RequireSyncStandby(ctx context.Context, dsn, name string) (string, error) {
	return changeSyncNames(ctx, dsn, func(l SyncStandbys) (SyncStandbys, bool) { return l.With(name), !l.Has(name) })
}

// SyncState is the replication state of the standby called name as the
// primary at dsn sees it: "sync", "potential", "quorum" or "async" while it
// streams, "" when it is not streaming.
func SyncState(ctx context.Context, dsn, name string) (string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", fmt.Errorf("sync state of %s: %w", name, err)
	}
	defer conn.Close(context.Background())
	var state string
	err = conn.QueryRow(ctx, qStreamingNamed, name).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("sync state of %s: %w", name, err)
	}
	return state, nil
}

// changeSyncNames sets synchronous_standby_names to what change makes of
// the current list, unless change says there is nothing to do.
func changeSyncNames(ctx context.Context, dsn string, change func(SyncStandbys) (SyncStandbys, bool)) (string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", fmt.Errorf("synchronous_standby_names: %w", err)
	}
	defer conn.Close(context.Background())
	var cur string
	if err := conn.QueryRow(ctx, qSyncNames).Scan(&cur); err != nil {
		return "", fmt.Errorf("synchronous_standby_names: %w", err)
	}
	list, err := ParseSyncStandbys(cur)
	if err != nil {
		return "", err
	}
	next, ok := change(list)
	if !ok {
		return cur, nil
	}
	want := next.String()
	if _, err := conn.Exec(ctx, qSetSyncNames, pgx.QueryExecModeSimpleProtocol, want); err != nil {
		return "", fmt.Errorf("synchronous_standby_names = %q: %w", want, err)
	}
	if _, err := conn.Exec(ctx, qReloadConf); err != nil {
		return "", fmt.Errorf("synchronous_standby_names: pg_reload_conf: %w", err)
	}
	// The reload is a signal: a new session shows the value once the
	// postmaster has read the file again.
	for {
		got, err := currentSyncNames(ctx, dsn)
		if err == nil && got == want {
			return want, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("synchronous_standby_names = %q not in force (now %q, %v): %w", want, got, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func currentSyncNames(ctx context.Context, dsn string) (string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var s string
	err = conn.QueryRow(ctx, qSyncNames).Scan(&s)
	return s, err
}

// SyncStandbys is a parsed synchronous_standby_names: Method "FIRST"
// (priority: the first Num streaming standbys in Names' order) or "ANY"
// (quorum: any Num of them). The zero value is no synchronous standby.
type SyncStandbys struct {
	Method string
	Num    int
	Names  []string
}

// ParseSyncStandbys reads a synchronous_standby_names value in any of
// PostgreSQL's forms: "", "a, b", "FIRST 1 (a, b)", "ANY 2 (a, b, c)",
// "2 (a, b)"; names may be double-quoted.
func ParseSyncStandbys(s string) (SyncStandbys, error) {
	bad := func(why string) (SyncStandbys, error) {
		return SyncStandbys{}, fmt.Errorf("synchronous_standby_names %q: %s", s, why)
	}
	rest := strings.TrimSpace(s)
	if rest == "" {
		return SyncStandbys{}, nil
	}
	l := SyncStandbys{Method: "FIRST", Num: 1}
	word, after := leadingWord(rest)
	keyword := strings.EqualFold(word, "FIRST") || strings.EqualFold(word, "ANY")
	if keyword {
		l.Method = strings.ToUpper(word)
		word, after = leadingWord(after)
	}
	if n, err := strconv.Atoi(word); err == nil && strings.HasPrefix(after, "(") {
		if n < 1 {
			return bad("the number of synchronous standbys must be at least 1")
		}
		if !strings.HasSuffix(after, ")") {
			return bad("no closing parenthesis")
		}
		l.Num, rest = n, strings.TrimSpace(after[1:len(after)-1])
	} else if keyword {
		return bad("FIRST and ANY take a number and a list in parentheses")
	}
	names, err := splitNames(rest)
	if err != nil {
		return bad(err.Error())
	}
	l.Names = names
	return l, nil
}

// leadingWord splits s at its first run of spaces or its first "(".
func leadingWord(s string) (word, rest string) {
	i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '(' })
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

func splitNames(s string) ([]string, error) {
	var names []string
	for s != "" {
		var name string
		if strings.HasPrefix(s, `"`) {
			i := 1
			for {
				j := strings.IndexByte(s[i:], '"')
				if j < 0 {
					return nil, errors.New("unterminated quoted name")
				}
				i += j + 1
				if i < len(s) && s[i] == '"' { // "" inside a quoted name
					i++
					continue
				}
				break
			}
			name, s = strings.ReplaceAll(s[1:i-1], `""`, `"`), strings.TrimSpace(s[i:])
		} else {
			i := strings.IndexByte(s, ',')
			if i < 0 {
				i = len(s)
			}
			name, s = strings.TrimSpace(s[:i]), s[i:]
			if strings.ContainsFunc(name, unicode.IsSpace) {
				return nil, fmt.Errorf("%q: a name with spaces must be double-quoted", name)
			}
		}
		if name == "" {
			return nil, errors.New("an empty standby name")
		}
		names = append(names, name)
		if s != "" {
			if s[0] != ',' {
				return nil, fmt.Errorf("unexpected %q after %q", s, name)
			}
			s = strings.TrimSpace(s[1:])
			if s == "" {
				return nil, errors.New("a trailing comma")
			}
		}
	}
	return names, nil
}

// Has reports whether the list names the standby (PostgreSQL compares
// application names without regard to case).
func (l SyncStandbys) Has(name string) bool {
	for _, n := range l.Names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// Without is the list without the standby called name; the number of
// synchronous standbys shrinks with it when fewer names remain.
func (l SyncStandbys) Without(name string) SyncStandbys {
	out := SyncStandbys{Method: l.Method, Num: l.Num}
	for _, n := range l.Names {
		if !strings.EqualFold(n, name) {
			out.Names = append(out.Names, n)
		}
	}
	out.Num = min(out.Num, len(out.Names))
	return out
}

// With is the list with the standby called name added last (unchanged when
// it is there); an empty list becomes that one synchronous standby.
func (l SyncStandbys) With(name string) SyncStandbys {
	if l.Has(name) {
		return l
	}
	out := SyncStandbys{Method: l.Method, Num: max(l.Num, 1), Names: append(append([]string(nil), l.Names...), name)}
	if out.Method == "" {
		out.Method = "FIRST"
	}
	return out
}

// String is the list as synchronous_standby_names reads it back: "" for no
// standby, else "FIRST n (...)" or "ANY n (...)" with every name quoted.
func (l SyncStandbys) String() string {
	if len(l.Names) == 0 || l.Num < 1 {
		return ""
	}
	quoted := make([]string, len(l.Names))
	for i, n := range l.Names {
		quoted[i] = `"` + strings.ReplaceAll(n, `"`, `""`) + `"`
	}
	return fmt.Sprintf("%s %d (%s)", l.Method, l.Num, strings.Join(quoted, ", "))
}
