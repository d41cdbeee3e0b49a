package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/workflows/order"
)

// uiOrigin is a Web UI origin the test's codec server lets browsers call it from.
const uiOrigin = "http://127.0.0.1:8243"

func withCodec(t *testing.T) func(*api.Server) {
	return func(srv *api.Server) {
		srv.Codec = pii.NewCodec(testkit.PII(t))
		srv.CodecOrigins = []string{uiOrigin}
	}
}

// TestExportedHistoryHoldsNoEmailOrPaymentToken places a paid order and a
// declined one (the provider's decline quotes the card token), exports each
// saga's history with the real temporal CLI (`workflow show --output json`)
// and requires that neither the customer's e-mail, their street nor the
// token appears in it, while sealed payloads do. `orderflow replay` replays the export with
// the keys, and refuses it, saying why, with none or the wrong ones. The
// same export through the gateway's codec server (--codec-endpoint,
// --codec-auth) shows the e-mail to an operator and is refused to a
// customer.
func TestExportedHistoryHoldsNoEmailOrPaymentToken(t *testing.T) {
	s := newStack(t, true, withCodec(t))
	sku := testkit.Product(t, s.pool, 1500, 10)
	dir := t.TempDir()
	for _, tc := range []struct{ token, status string }{
		{payment.TokenVisa, orderflow.StatusConfirmed},
		{payment.TokenChargeDeclined, orderflow.StatusFailed},
	} {
		t.Run(tc.token, func(t *testing.T) {
			email := "ada-" + uuid.NewString()[:8] + "@example.com"
			o := newOrder(customer(), tc.token, api.OrderItem{SKU: sku, Quantity: 1})
			o.Email = email
			street := "Sealed Street " + uuid.NewString()[:8]
			o.ShippingAddress.Line1 = street
			id := s.placeOK(o)
			require.Equal(t, tc.status, s.waitTerminal(id).Status)
			wid := order.WorkflowID(id)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = s.temporal.GetWorkflow(ctx, wid, "").Get(ctx, nil) // the saga's end, whatever it is

			export := temporalCLI(t, "workflow", "show", "--workflow-id", wid, "--output", "json")
			for _, secret := range []string{email, tc.token, base64.StdEncoding.EncodeToString([]byte(email)), street} {
				assert.NotContains(t, export, secret, "the exported history shows %q", secret)
			}
			sealed := base64.StdEncoding.EncodeToString([]byte(pii.EncodingEncrypted))
			require.Contains(t, export, sealed, "the history's payloads are sealed")
			file := filepath.Join(dir, id+".json")
			require.NoError(t, os.WriteFile(file, []byte(export), 0o600))

			out, err := replay(t, file, "PII_KEYS="+os.Getenv("PII_KEYS"))
			require.NoError(t, err, "replay with the keys:\n%s", out)
			assert.Contains(t, out, "OK ")
			out, err = replay(t, file, "PII_KEYS=other:"+pii.NewKey())
			require.Error(t, err, "replay with another key:\n%s", out)
			assert.Contains(t, out, "cannot open its payloads")
			out, err = replay(t, file, "PII_KEYS=")
			require.Error(t, err, "replay without keys:\n%s", out)
			assert.Contains(t, out, "no key is configured")

			operator := temporalCLI(t, "workflow", "show", "--workflow-id", wid, "--output", "json",
				"--codec-endpoint", s.url+"/codec", "--codec-auth", s.tok.Operator())
			assert.Contains(t, startInput(t, operator), email, "an operator reads the e-mail through the codec server")
			assert.Contains(t, startInput(t, operator), street, "and the shipping address")
			_, err = temporalCLIErr(t, "workflow", "show", "--workflow-id", wid, "--output", "json",
				"--codec-endpoint", s.url+"/codec", "--codec-auth", s.as(o.CustomerID))
			assert.Error(t, err, "a customer's token must not decode histories")
		})
	}
}

// startInput returns the data of the first payload of the saga's input in a
// history exported as JSON.
func startInput(t *testing.T, export string) string {
	t.Helper()
	var h struct {
		Events []struct {
			Attrs struct {
				Input struct {
					Payloads []struct {
						Data []byte `json:"data"`
					} `json:"payloads"`
				} `json:"input"`
			} `json:"workflowExecutionStartedEventAttributes"`
		} `json:"events"`
	}
	require.NoError(t, json.Unmarshal([]byte(export), &h))
	require.NotEmpty(t, h.Events)
	require.NotEmpty(t, h.Events[0].Attrs.Input.Payloads, "the start event has the saga's input")
	return string(h.Events[0].Attrs.Input.Payloads[0].Data)
}

// replay runs `orderflow replay file` with env added to the test's.
func replay(t *testing.T, file string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testkit.Binary(t), "replay", file)
	cmd.Env = append(append(os.Environ(), "PII_KEYS_FILE="), env...)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// temporalCLIErr runs the temporal CLI as temporalCLI does and returns its
// output and error instead of failing.
func temporalCLIErr(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cli := testkit.Require(t, testkit.EnvCLI)
	args = append(args, "--address", testkit.Require(t, testkit.EnvTemporal), "--namespace", "default", "--color", "never")
	b, err := exec.Command(cli, args...).CombinedOutput()
	return string(b), err
}

// TestCodecServerNeedsAnOperatorAndAnswersTheUIOrigin: the codec endpoints
// refuse callers without a token (401) or without the operator role (403),
// with the JSON error body; decode what the saga's clients sealed for an
// operator, by bearer token or by the session cookie the sign-in form sets,
// beyond the per-customer rate limit; answer a CORS preflight from the Web
// UI's origin, credentials allowed, and no other origin; and refuse a body
// that is not Payloads with a 400.
func TestCodecServerNeedsAnOperatorAndAnswersTheUIOrigin(t *testing.T) {
	s := newStack(t, false, withCodec(t))
	email := "grace-" + uuid.NewString()[:8] + "@example.com"
	p, err := pii.DataConverter(testkit.PII(t)).ToPayload(map[string]string{"email": email})
	require.NoError(t, err)
	body := `{"payloads":[{"metadata":{"encoding":"` + base64.StdEncoding.EncodeToString(p.Metadata["encoding"]) +
		`","encryption-key-id":"` + base64.StdEncoding.EncodeToString(p.Metadata[pii.MetadataKeyID]) +
		`"},"data":"` + base64.StdEncoding.EncodeToString(p.Data) + `"}]}`
	decode := func(h map[string]string) response {
		if h == nil {
			h = map[string]string{}
		}
		if _, ok := h["Authorization"]; !ok {
			h["Authorization"] = ""
		}
		return s.do(http.MethodPost, "/codec/decode", h, []byte(body))
	}

	r := decode(nil)
	require.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)
	assert.NotEmpty(t, r.header.Get("WWW-Authenticate"))
	assert.Contains(t, string(r.body), `"error"`)
	r = decode(map[string]string{"Authorization": s.as("c-codec")})
	require.Equal(t, http.StatusForbidden, r.status, "%s", r.body)
	assert.Contains(t, string(r.body), `"error"`)
	r = decode(map[string]string{"Authorization": s.tok.Operator()})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Contains(t, string(r.body), base64.StdEncoding.EncodeToString([]byte(`{"email":"`+email+`"}`)), "the decoded payload holds the JSON it sealed")

	r = s.do(http.MethodPost, "/codec/decode", map[string]string{"Authorization": s.tok.Operator()}, []byte(`{"payloads":"nope"}`))
	require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
	assert.Contains(t, string(r.body), "invalid_payloads")

	// The browser's way: the sign-in form sets an HttpOnly cookie.
	signIn := func(token string) *http.Response {
		res, err := http.PostForm(s.url+"/codec/session", url.Values{"token": {token}})
		require.NoError(t, err)
		res.Body.Close()
		return res
	}
	res := signIn(strings.TrimPrefix(s.tok.Bearer("c-codec", auth.RoleCustomer), "Bearer "))
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Empty(t, res.Cookies(), "a customer gets no codec session")
	res = signIn(strings.TrimPrefix(s.tok.Operator(), "Bearer "))
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Len(t, res.Cookies(), 1)
	ck := res.Cookies()[0]
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "form-action 'self'")
	r = decode(map[string]string{"Cookie": ck.Name + "=" + ck.Value})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r = decode(map[string]string{"Cookie": ck.Name + "=forged"})
	require.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)

	// Codec calls count against the address only: an operator's UI page
	// makes dozens, far past a customer's quota.
	lim := newStack(t, false, withCodec(t), func(srv *api.Server) { srv.RateLimit.PerUser = 2 })
	op := lim.tok.Bearer("ops-codec-"+uuid.NewString()[:8], auth.RoleOperator)
	for i := range 5 {
		r := lim.do(http.MethodPost, "/codec/decode", map[string]string{"Authorization": op}, []byte(body))
		require.Equal(t, http.StatusOK, r.status, "codec call %d: %s", i+1, r.body)
	}

	preflight := func(origin string) response {
		return s.do(http.MethodOptions, "/codec/decode", map[string]string{"Authorization": "", "Origin": origin,
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-namespace"}, nil)
	}
	r = preflight(uiOrigin)
	assert.Equal(t, http.StatusNoContent, r.status)
	assert.Equal(t, uiOrigin, r.header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "true", r.header.Get("Access-Control-Allow-Credentials"))
	r = preflight("http://evil.example")
	assert.Empty(t, r.header.Get("Access-Control-Allow-Origin"), "another origin is not allowed")
}
