package pii_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/orderflow/orderflow/internal/pii"
)

type orderInput struct {
	Email, PaymentToken string
}

func TestCodecSealsPayloadsAndRotatesKeys(t *testing.T) {
	k1, k2 := pii.NewKey(), pii.NewKey()
	old := pii.DataConverter(keyring(t, "k1:"+k1, ""))
	rotated := pii.DataConverter(keyring(t, "k1:"+k1+",k2:"+k2, "k2"))
	dropped := pii.DataConverter(keyring(t, "k2:"+k2, ""))
	in := orderInput{Email: "ada@example.com", PaymentToken: "tok_visa"}

	p, err := old.ToPayload(in)
	require.NoError(t, err)
	assert.Equal(t, pii.EncodingEncrypted, string(p.Metadata[converter.MetadataEncoding]))
	assert.Equal(t, "k1", string(p.Metadata[pii.MetadataKeyID]))
	for _, secret := range []string{in.Email, in.PaymentToken, "json/plain"} {
		assert.NotContains(t, string(p.Data), secret, "the sealed payload shows %q", secret)
	}

	var got orderInput
	require.NoError(t, rotated.FromPayload(p, &got), "a payload sealed under the old key opens after the rotation")
	assert.Equal(t, in, got)
	p2, err := rotated.ToPayload(in)
	require.NoError(t, err)
	assert.Equal(t, "k2", string(p2.Metadata[pii.MetadataKeyID]), "new payloads use the active key")
	require.NoError(t, dropped.FromPayload(p2, &got))
	err = dropped.FromPayload(p, &got)
	assert.True(t, errors.Is(err, pii.ErrUnknownKey), "a dropped key's payloads fail naming the key: %v", err)

	// A history from before the codec still decodes.
	plain, err := converter.GetDefaultDataConverter().ToPayload(in)
	require.NoError(t, err)
	got = orderInput{}
	require.NoError(t, rotated.FromPayload(plain, &got))
	assert.Equal(t, in, got)

	tampered := &commonpb.Payload{Metadata: p.Metadata, Data: bytes.Clone(p.Data)}
	tampered.Data[len(tampered.Data)-1] ^= 1
	assert.True(t, errors.Is(rotated.FromPayload(tampered, &got), pii.ErrTampered))
}

// The codec server decodes what operators send it; a column value sealed for
// PostgreSQL must not open there.
func TestCodecDoesNotOpenAColumnCiphertext(t *testing.T) {
	ring := keyring(t, "k1:"+pii.NewKey(), "")
	column := ring.SealString("ada@example.com", "order-1")
	_, err := pii.NewCodec(ring).Decode([]*commonpb.Payload{{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(pii.EncodingEncrypted)}, Data: column,
	}})
	assert.True(t, errors.Is(err, pii.ErrTampered), "got %v", err)
}

func TestFailureConverterSealsTheMessage(t *testing.T) {
	_, fc := pii.Converters(keyring(t, "k1:"+pii.NewKey(), ""))
	f := fc.ErrorToFailure(temporal.NewNonRetryableApplicationError("card tok_chargeDeclined for ada@example.com declined", "PaymentDeclined", nil))
	assert.NotContains(t, f.String(), "tok_chargeDeclined")
	assert.NotContains(t, f.String(), "ada@example.com")
	var app *temporal.ApplicationError
	require.True(t, errors.As(fc.FailureToError(f), &app))
	assert.Contains(t, app.Error(), "tok_chargeDeclined for ada@example.com", "the message comes back decoded")
	assert.Equal(t, "PaymentDeclined", app.Type(), "the type, which the saga branches on, stays readable")
}
