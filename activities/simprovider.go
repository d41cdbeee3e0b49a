package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/payment"
)

// Test tokens the simulated provider understands.
const (
	TokenVisa           = payment.TokenVisa
	TokenMastercard     = payment.TokenMastercard
	TokenChargeDeclined = payment.TokenChargeDeclined
	TokenFlaky          = payment.TokenFlaky
	TokenUnavailable    = payment.TokenUnavailable
)

// ErrProviderUnavailable is the simulated provider's transient failure.
var ErrProviderUnavailable = payment.ErrUnavailable

// SimulatedProvider is an in-process card provider for development and tests.
// Its ledger is the paysim_ledger table, one row per idempotency key, so a
// replayed request returns the first answer across worker restarts; only the
// card network behind it is simulated.
type SimulatedProvider struct {
	DB *pgxpool.Pool

	mu       sync.Mutex
	attempts map[string]int
}

// Name identifies the provider in payment records.
func (s *SimulatedProvider) Name() string { return "paysim" }

// Charge charges a test token; see the Token constants for their behaviour.
func (s *SimulatedProvider) Charge(ctx context.Context, req ChargeRequest) (ProviderCharge, error) {
	if ch, found, err := s.FindCharge(ctx, req.IdempotencyKey); err != nil || found {
		if found && (ch.AmountCents != req.AmountCents || ch.Currency != req.Currency) {
			return ProviderCharge{}, fmt.Errorf("idempotency key %s reused with different parameters", req.IdempotencyKey)
		}
		return ch, err
	}
	switch req.Token {
	case TokenVisa, TokenMastercard:
	case TokenChargeDeclined:
		return ProviderCharge{}, &DeclinedError{Code: "card_declined", Message: "Your card was declined."}
	case TokenFlaky:
		if s.attempt(req.IdempotencyKey) <= 2 {
			return ProviderCharge{}, fmt.Errorf("charge %s: %w", req.IdempotencyKey, ErrProviderUnavailable)
		}
	case TokenUnavailable:
		return ProviderCharge{}, fmt.Errorf("charge %s: %w", req.IdempotencyKey, ErrProviderUnavailable)
	default:
		return ProviderCharge{}, &DeclinedError{Code: "invalid_token", Message: "No such token."}
	}
	ch := ProviderCharge{ID: "ch_" + uuid.NewString(), AmountCents: req.AmountCents, Currency: req.Currency}
	const q = `INSERT INTO paysim_ledger (idempotency_key, kind, ref, token, amount_cents, currency)
		VALUES ($1, 'charge', $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING`
	ictx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	tag, err := s.DB.Exec(ictx, q, req.IdempotencyKey, ch.ID, req.Token, ch.AmountCents, ch.Currency)
	if err != nil {
		return ProviderCharge{}, fmt.Errorf("paysim charge: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return ch, nil
	}
	// A concurrent request with the same key won; answer with its charge.
	ch, _, err = s.FindCharge(ctx, req.IdempotencyKey)
	return ch, err
}

// Refund refunds a charge in full, once per idempotency key.
func (s *SimulatedProvider) Refund(ctx context.Context, req RefundRequest) (ProviderRefund, error) {
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	var charged int64
	err := s.DB.QueryRow(ctx, `SELECT amount_cents FROM paysim_ledger WHERE ref = $1 AND kind = 'charge'`, req.ChargeID).Scan(&charged)
	if errors.Is(err, pgx.ErrNoRows) {
		return ProviderRefund{}, fmt.Errorf("paysim refund: no charge %s", req.ChargeID)
	}
	if err != nil {
		return ProviderRefund{}, fmt.Errorf("paysim refund: %w", err)
	}
	if req.AmountCents > charged {
		return ProviderRefund{}, fmt.Errorf("paysim refund: %d exceeds charge %d", req.AmountCents, charged)
	}
	const q = `INSERT INTO paysim_ledger (idempotency_key, kind, ref, charge_ref, amount_cents, currency)
		VALUES ($1, 'refund', $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING`
	if _, err := s.DB.Exec(ctx, q, req.IdempotencyKey, "re_"+uuid.NewString(), req.ChargeID, req.AmountCents, req.Currency); err != nil {
		return ProviderRefund{}, fmt.Errorf("paysim refund: %w", err)
	}
	var rf ProviderRefund
	err = s.DB.QueryRow(ctx, `SELECT ref FROM paysim_ledger WHERE idempotency_key = $1 AND kind = 'refund'`, req.IdempotencyKey).Scan(&rf.ID)
	if err != nil {
		return ProviderRefund{}, fmt.Errorf("paysim refund: %w", err)
	}
	return rf, nil
}

// FindCharge returns the charge made with an idempotency key, if any.
func (s *SimulatedProvider) FindCharge(ctx context.Context, key string) (ProviderCharge, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	var ch ProviderCharge
	err := s.DB.QueryRow(ctx, `SELECT ref, amount_cents, currency FROM paysim_ledger WHERE idempotency_key = $1 AND kind = 'charge'`, key).
		Scan(&ch.ID, &ch.AmountCents, &ch.Currency)
	if errors.Is(err, pgx.ErrNoRows) {
		return ProviderCharge{}, false, nil
	}
	if err != nil {
		return ProviderCharge{}, false, fmt.Errorf("paysim find charge: %w", err)
	}
	return ch, true, nil
}

func (s *SimulatedProvider) attempt(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attempts == nil {
		s.attempts = map[string]int{}
	}
	s.attempts[key]++
	return s.attempts[key]
}
