package api

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/orderflow/orderflow/activities/monitor"
)

// Paging of GET /v1/monitor/findings.
const (
	defaultFindingsLimit = 50
	maxFindingsLimit     = 200
	cursorFindings       = "f1"
)

// FindingJSON is one finding of the invariant monitor (docs/operations.md,
// "Invariant monitor"), as the store keeps it: open until a nightly run no
// longer sees it.
type FindingJSON = monitor.Row

// FindingsPageJSON is the answer of GET /v1/monitor/findings: a page of
// findings, oldest first. Next is the after= of the following page, absent
// on the last one.
type FindingsPageJSON struct {
	Findings []FindingJSON `json:"findings"`
	Next     string        `json:"next,omitempty"`
}

// listFindings is GET /v1/monitor/findings?kind=&all=&after=&limit=
// (operators): the open findings, or all of them with all=true.
func (s *Server) listFindings(c echo.Context) error {
	p, err := queryParams(c, "kind", "all", "after", "limit")
	if err != nil {
		return err
	}
	var q monitor.Query
	if kind, given := p["kind"]; given {
		if !slices.Contains(monitor.Kinds(), kind) {
			return newError(http.StatusBadRequest, "invalid_request", "kind must be one of "+strings.Join(monitor.Kinds(), ", "),
				Detail{Field: "kind", Issue: "one of " + strings.Join(monitor.Kinds(), ", ")})
		}
		q.Kind = kind
	}
	if all, given := p["all"]; given {
		if q.All, err = strconv.ParseBool(all); err != nil || all != "true" && all != "false" {
			return newError(http.StatusBadRequest, "invalid_request", "all must be true or false",
				Detail{Field: "all", Issue: "true (resolved findings too) or false (open ones only)"})
		}
	}
	if q.Limit, q.After, err = readPage(p, defaultFindingsLimit, maxFindingsLimit, parseFindingsCursor); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	page, err := monitor.Store{DB: s.DB}.List(ctx, q)
	if err != nil {
		return err
	}
	out := FindingsPageJSON{Findings: page.Findings}
	if out.Findings == nil {
		out.Findings = []FindingJSON{}
	}
	if page.Next != 0 {
		out.Next = encodeCursor(cursorFindings, strconv.FormatInt(page.Next, 10))
	}
	return c.JSON(http.StatusOK, out)
}

// parseFindingsCursor reads the after= of GET /v1/monitor/findings.
func parseFindingsCursor(v string) (int64, error) { return parseIDCursor(v, cursorFindings) }
