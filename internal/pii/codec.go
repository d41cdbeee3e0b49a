package pii

import (
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Payload metadata of an encrypted Temporal payload.
const (
	// EncodingEncrypted is the "encoding" of a payload Codec sealed.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID names the key that sealed a payload, for operators; the
	// ciphertext carries it too, authenticated.
	MetadataKeyID = "encryption-key-id"
)

// payloadAAD binds a payload's ciphertext to its use: a column value sealed
// for PostgreSQL (bound to its order id) never opens as a payload, so the
// codec server cannot be used to read the database's ciphertexts.
var payloadAAD = []byte("orderflow/temporal-payload/v1")

// Codec is a Temporal payload codec that encrypts every payload with
// AES-256-GCM under the keyring's active key: workflow and activity inputs
// and results, local activity markers, queries, updates, memos, user
// metadata (summaries and details) and, with FailureConverter, failure
// messages. The whole payload (metadata and data) is sealed, so the history
// shows only the key id. Decode opens a payload under whichever key of the
// keyring sealed it, and passes through payloads that are not encrypted
// (histories from before the codec), so keys rotate like the column keys:
// add a key and make it active; keep the old one while histories sealed
// with it are retained.
type Codec struct{ keys *Keyring }

// NewCodec returns the codec for a keyring.
func NewCodec(k *Keyring) *Codec { return &Codec{keys: k} }

// Encode seals each payload.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("pii codec: marshal payload: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:              []byte(c.keys.Active()),
			},
			Data: c.keys.Seal(plain, payloadAAD),
		}
	}
	return out, nil
}

// Decode opens each sealed payload; others pass through unchanged.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		plain, err := c.keys.Open(p.GetData(), payloadAAD)
		if err != nil {
			return payloads, fmt.Errorf("pii codec: %w", err)
		}
		var orig commonpb.Payload
		if err := proto.Unmarshal(plain, &orig); err != nil {
			return payloads, fmt.Errorf("pii codec: %w: not a payload", ErrMalformed)
		}
		out[i] = &orig
	}
	return out, nil
}

// DataConverter is Temporal's default data converter with the keyring's
// codec: what every orderflow client (gateway, worker, replay) uses, so
// histories hold no personal data in the clear.
func DataConverter(k *Keyring) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), NewCodec(k))
}

// failureConverter moves a failure's message and stack trace into an
// encoded payload, sealed by dc: a provider's decline can quote what the
// customer sent, and a failure's message is otherwise stored in the clear.
func failureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc, EncodeCommonAttributes: true})
}

// Converters are the data and failure converters every orderflow Temporal
// client and replayer sets together, so payloads and failure messages are
// both sealed.
func Converters(k *Keyring) (converter.DataConverter, converter.FailureConverter) {
	dc := DataConverter(k)
	return dc, failureConverter(dc)
}
