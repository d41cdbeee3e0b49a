package config

import (
	_ "embed"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Print writes the effective value of every setting v loaded, in docs
// sections: the variable, the value with secrets masked, and where it came
// from (default or env; "env, invalid" when it does not parse).
func Print(w io.Writer, v *Values) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "# effective configuration of: %s (secrets masked)\n", v.Components())
	vals := v.All()
	for _, sec := range Sections {
		first := true
		for _, val := range vals {
			if val.Setting.Section != sec {
				continue
			}
			if first {
				fmt.Fprintf(tw, "\n# %s\n", sec)
				first = false
			}
			shown := val.Setting.Show(val.Raw)
			if shown == "" {
				shown = "(unset)"
			}
			source := val.Source()
			if val.err != nil {
				source += ", invalid"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", val.Setting.Name, shown, source)
		}
	}
	return tw.Flush()
}

//go:embed docs/intro.md
var docsIntro string

//go:embed docs/outro.md
var docsOutro string

// Markdown writes docs/configuration.md: the hand-written introduction, a
// table per section generated from the declarations, and the hand-written
// notes on the local stack.
func Markdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("<!-- Generated from internal/config/settings.go and internal/config/docs by `go generate ./internal/config`; do not edit. -->\n\n")
	b.WriteString(docsIntro)
	for _, sec := range Sections {
		fmt.Fprintf(&b, "\n### %s\n\n| variable | default | type | read by | what it does |\n|---|---|---|---|---|\n", sec)
		for _, s := range Settings() {
			if s.Section != sec {
				continue
			}
			def := "unset"
			switch {
			case s.Default != "" && s.Secret == Secret:
				def = "set, not shown"
			case s.Default != "":
				def = "`" + s.Show(s.Default) + "`"
			}
			kind := s.kind
			switch s.Secret {
			case Secret:
				kind += ", secret"
			case Password:
				kind += ", password masked"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", s.Name, cell(def), cell(kind), s.Used, cell(s.Doc))
		}
	}
	b.WriteString("\n")
	b.WriteString(docsOutro)
	_, err := io.WriteString(w, b.String())
	return err
}

// cell escapes what would end a table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
