package notify

import (
	"context"

	"github.com/orderflow/orderflow/internal/breaker"
)

// SMTPFailure reports whether a send's error says the mail server failed
// (unreachable, timed out, a temporary refusal). A permanent refusal of one
// message (an unknown recipient) is the server's answer, not its failure.
func SMTPFailure(err error) bool { return err != nil && !IsPermanent(err) }

// NewSMTPBreaker is the circuit breaker of the mail server, with the
// design's numbers.
func NewSMTPBreaker() *breaker.Breaker {
	return breaker.New("smtp", breaker.Settings{}, breaker.Options{Failure: SMTPFailure})
}

// Guarded sends m's messages through b: while b is open a send fails at
// once with an error wrapping breaker.ErrOpen, which the outbox treats as
// any temporary failure (the message waits for its next attempt).
func Guarded(m Mailer, b *breaker.Breaker) Mailer { return guarded{m, b} }

type guarded struct {
	Mailer
	b *breaker.Breaker
}

func (g guarded) Send(ctx context.Context, m Message) error {
	return g.b.Do(func() error { return g.Mailer.Send(ctx, m) })
}
