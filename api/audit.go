package api

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/orderflow/orderflow/activities/audit"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/logging"
)

// HeaderAuditReason is the optional header in which an operator or admin
// says why they act; the audit log keeps it with the act.
const HeaderAuditReason = "Audit-Reason"

// maxAuditReason bounds Audit-Reason, in bytes.
const maxAuditReason = 500

// Audited actions: the audit log's action column.
const (
	actionProductPut     = "product.put"
	actionStockTransfer  = "stock.transfer"
	actionErasePII       = "customer.erase_pii"
	actionOrderCancel    = "order.cancel"
	actionReturnReceived = "return.receive"
)

// auditEntry is the audit row of the request's act: the token's subject
// and strongest role, the Audit-Reason header and the request id. A reason
// that is not 1-500 bytes of printable UTF-8 is 400.
func auditEntry(c echo.Context, action, target string, details any) (audit.Entry, error) {
	ctx := c.Request().Context()
	claims, ok := auth.FromContext(ctx)
	if !ok {
		return audit.Entry{}, auth.ErrMissingToken
	}
	reason, err := auditReason(c.Request().Header)
	if err != nil {
		return audit.Entry{}, err
	}
	e := audit.Entry{Actor: claims.Subject, Role: string(strongestRole(claims)), Action: action, Target: target,
		Reason: reason, RequestID: logging.RequestID(ctx)}
	if details != nil {
		if e.Details, err = json.Marshal(details); err != nil {
			return audit.Entry{}, err
		}
	}
	return e, nil
}

func auditReason(h http.Header) (string, error) {
	vs := h.Values(HeaderAuditReason)
	if len(vs) == 0 {
		return "", nil
	}
	bad := newError(http.StatusBadRequest, "invalid_audit_reason", "Audit-Reason must be given once, as 1-500 bytes of printable UTF-8",
		Detail{Field: HeaderAuditReason, Issue: "one value of 1-500 bytes, no control characters"})
	if len(vs) > 1 || !printable(vs[0], maxAuditReason) {
		return "", bad
	}
	return vs[0], nil
}

// printable reports whether s is 1 to max bytes of UTF-8 without control
// characters (PostgreSQL's text refuses NUL; logs and terminals the rest).
func printable(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, ch := range s {
		if unicode.IsControl(ch) {
			return false
		}
	}
	return true
}

// strongestRole is the role an act is recorded under.
func strongestRole(c *auth.Claims) auth.Role {
	switch {
	case c.Has(auth.RoleAdmin):
		return auth.RoleAdmin
	case c.Has(auth.RoleOperator):
		return auth.RoleOperator
	}
	return auth.RoleCustomer
}

// auditedAct is an act whose audit row commits in the act's own
// transaction: the act's store call runs on Context, and Done appends the
// row on its own when the act turned out to take no transaction.
type auditedAct struct {
	s     *Server
	entry audit.Entry
	hook  *db.CommitHook
}

// auditInTx prepares the audit row of a database write: run the write on
// the returned context (its transaction appends the row before committing,
// db.OnCommit), then call Done once it succeeded.
func (s *Server) auditInTx(c echo.Context, ctx context.Context, action, target string, details any) (context.Context, *auditedAct, error) {
	e, err := auditEntry(c, action, target, details)
	if err != nil {
		return nil, nil, err
	}
	ctx, hook := db.OnCommit(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := audit.Append(ctx, tx, e)
		return err
	})
	return ctx, &auditedAct{s: s, entry: e, hook: hook}, nil
}

// Done appends the row when the act committed without it.
func (a *auditedAct) Done(ctx context.Context) error {
	if a.hook.Ran() {
		return nil
	}
	_, err := audit.Store{DB: a.s.DB}.Append(ctx, a.entry)
	return err
}

// auditFirst appends the audit row of an act that is not a write of this
// database (a Temporal update or a workflow start) before the act, in a
// transaction of its own: no act goes unrecorded, and a row may record an
// act the service then refused (the order's or return's own history says
// what became of it).
func (s *Server) auditFirst(c echo.Context, ctx context.Context, action, target string, details any) error {
	e, err := auditEntry(c, action, target, details)
	if err != nil {
		return err
	}
	_, err = audit.Store{DB: s.DB}.Append(ctx, e)
	return err
}

// Paging of GET /v1/audit.
const (
	defaultAuditLimit = 50
	maxAuditLimit     = 200
	maxAuditFilter    = 200
	cursorAudit       = "a1"
)

// AuditEntryJSON is one row of GET /v1/audit. Hashes are hex.
type AuditEntryJSON struct {
	ID        int64           `json:"id"`
	At        time.Time       `json:"at"`
	Actor     string          `json:"actor"`
	Role      string          `json:"role"`
	Action    string          `json:"action"`
	Target    string          `json:"target"`
	Reason    string          `json:"reason"`
	RequestID string          `json:"request_id"`
	Details   json.RawMessage `json:"details"`
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
}

// AuditPageJSON is the answer of GET /v1/audit: a page of the log, oldest
// first. Next is the after= of the following page, absent on the last one.
type AuditPageJSON struct {
	Entries []AuditEntryJSON `json:"entries"`
	Next    string           `json:"next,omitempty"`
}

// listAudit is GET /v1/audit?actor=&target=&after=&limit= (admins only).
func (s *Server) listAudit(c echo.Context) error {
	p, err := queryParams(c, "actor", "target", "after", "limit")
	if err != nil {
		return err
	}
	var q audit.Query
	for _, f := range []struct {
		name string
		into *string
	}{{"actor", &q.Actor}, {"target", &q.Target}} {
		v, given := p[f.name]
		if given && !printable(v, maxAuditFilter) {
			return newError(http.StatusBadRequest, "invalid_request", f.name+" must be 1-200 bytes of printable UTF-8",
				Detail{Field: f.name, Issue: "1-200 bytes, no control characters"})
		}
		*f.into = v
	}
	if q.Limit, q.After, err = readPage(p, defaultAuditLimit, maxAuditLimit, parseAuditCursor); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	page, err := audit.Store{DB: s.DB}.List(ctx, q)
	if err != nil {
		return err
	}
	out := AuditPageJSON{Entries: make([]AuditEntryJSON, len(page.Entries))}
	for i, e := range page.Entries {
		out.Entries[i] = AuditEntryJSON{ID: e.ID, At: e.At, Actor: e.Actor, Role: e.Role, Action: e.Action, Target: e.Target,
			Reason: e.Reason, RequestID: e.RequestID, Details: e.Details, PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)}
	}
	if page.Next != 0 {
		out.Next = encodeCursor(cursorAudit, strconv.FormatInt(page.Next, 10))
	}
	return c.JSON(http.StatusOK, out)
}

// parseAuditCursor reads the after= of the audit log: the last entry's id.
func parseAuditCursor(v string) (int64, error) { return parseIDCursor(v, cursorAudit) }
