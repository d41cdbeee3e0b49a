package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/activities/payment/paysim"
	"github.com/orderflow/orderflow/activities/payment/stripe"
	"github.com/orderflow/orderflow/internal/config"
)

func TestPaymentProvidersParseStrictlyAndBuildInOrder(t *testing.T) {
	cases := []struct {
		spec      string
		wantNames []string
		wantKinds []string
		wantErr   string
	}{
		{spec: "paysim-a=paysim:http://127.0.0.1:8090,paysim-b=paysim:http://127.0.0.1:8093",
			wantNames: []string{"paysim-a", "paysim-b"}, wantKinds: []string{"paysim", "paysim"}},
		{spec: "paysim-a=paysim:http://127.0.0.1:8090,card=stripe:http://127.0.0.1:12111",
			wantNames: []string{"paysim-a", "card"}, wantKinds: []string{"paysim", "stripe"}},
		{spec: "live=stripe:", wantNames: []string{"live"}, wantKinds: []string{"stripe"}},
		{spec: "", wantErr: "lists no provider"},
		{spec: "a=paysym:http://x", wantErr: "the kind must be paysim or stripe"},
		{spec: "a=http://127.0.0.1:8090", wantErr: "the kind must be paysim or stripe"},
		{spec: "a=paysim:http://x,a=paysim:http://y", wantErr: "listed twice"},
		{spec: "a=paysim:", wantErr: "needs a URL"},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			list, err := config.PaymentProviders.Parse(tc.spec)
			var ps []payment.Provider
			if err == nil {
				ps, err = buildProviders(paymentConfig{Providers: list, StripeKey: "sk_test_123", Timeout: time.Second}, nil)
			}
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, ps, len(tc.wantNames))
			for i, p := range ps {
				assert.Equal(t, tc.wantNames[i], p.Name())
				switch tc.wantKinds[i] {
				case "paysim":
					assert.IsType(t, &paysim.Client{}, p)
				case "stripe":
					assert.IsType(t, &stripe.Provider{}, p)
				}
			}
		})
	}
}
