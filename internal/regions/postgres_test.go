package regions

import "testing"

func TestParseSyncStandbysReadsEveryFormAndWritesItBackQuoted(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"", ""},
		{"west", `FIRST 1 ("west")`},
		{"east, west", `FIRST 1 ("east", "west")`},
		{"2 (a, b)", `FIRST 2 ("a", "b")`},
		{"FIRST 1 (west)", `FIRST 1 ("west")`},
		{"any 2 (a,b,c)", `ANY 2 ("a", "b", "c")`},
		{`FIRST 1 ("We""st", east)`, `FIRST 1 ("We""st", "east")`},
	} {
		l, err := ParseSyncStandbys(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := l.String(); got != tc.out {
			t.Errorf("%q reads back as %q, want %q", tc.in, got, tc.out)
		}
		again, err := ParseSyncStandbys(l.String())
		if err != nil || again.String() != tc.out {
			t.Errorf("%q: its own form %q does not read back (%q, %v)", tc.in, l.String(), again.String(), err)
		}
	}
	for _, bad := range []string{"FIRST (a)", "ANY 0 (a)", "a,", `"a`, "1 (a", "a b"} {
		if _, err := ParseSyncStandbys(bad); err == nil {
			t.Errorf("%q parsed; want an error", bad)
		}
	}
}

func TestWithoutTheLostRegionLeavesTheOthersAndShrinksTheCount(t *testing.T) {
	for _, tc := range []struct{ in, drop, out string }{
		{`FIRST 1 ("west")`, "west", ""},
		{`FIRST 1 ("west")`, "WEST", ""}, // application names compare without case
		{`FIRST 1 ("west")`, "east", `FIRST 1 ("west")`},
		{`ANY 2 ("a", "b", "c")`, "b", `ANY 2 ("a", "c")`},
		{`FIRST 2 ("a", "b")`, "a", `FIRST 1 ("b")`},
		{"", "west", ""},
	} {
		l, err := ParseSyncStandbys(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.Without(tc.drop).String(); got != tc.out {
			t.Errorf("%q without %q = %q, want %q", tc.in, tc.drop, got, tc.out)
		}
	}
	l, _ := ParseSyncStandbys("")
	if got := l.With("west").String(); got != `FIRST 1 ("west")` {
		t.Errorf("an empty list with west = %q", got)
	}
	if got := l.With("west").With("west").String(); got != `FIRST 1 ("west")` {
		t.Errorf("west added twice = %q", got)
	}
}
