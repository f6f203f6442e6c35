package outcome

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"mailout/internal/mx"
	"mailout/internal/mx/mxtest"
	"mailout/internal/route"
)

// The resolver's own errors, from real exchanges with a DNS server on
// loopback, are read by their failure kind: each kind gives its class, on
// the direct route and for the relay's host name.
func TestClassifyResolverErrors(t *testing.T) {
	z := mxtest.NewZone().
		RR("nomail.test. 300 IN TXT \"v=spf1 -all\"").
		NullMX("null.test").
		MX("noaddr.test", 10, "mx.noaddr.test").
		MX("loop.test", 10, "mx.loop.test").A("mx.loop.test", "127.0.0.1").
		A("broken.test", "192.0.2.1").ServFail("broken.test").
		Refused("refused.test").
		Drop("silent.test")
	s := mxtest.Start(t, z)
	r, err := mx.New(mx.Config{Servers: []string{s.Addr()}, Timeout: 200 * time.Millisecond, FailureTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		domain  string
		kind    mx.Failure
		direct  Class
		relay   Class
		local   bool // on the direct route
		retried bool // on the direct route
	}{
		{"silent.test", mx.FailureTimeout, DNSUnreachable, DNSUnreachable, true, true},
		{"refused.test", mx.FailureRefused, DNSUnreachable, DNSUnreachable, true, true},
		{"broken.test", mx.FailureServFail, Temporary, Temporary, false, true},
		{"nowhere.test", mx.FailureNXDomain, DNSNXDomain, DNSNXDomain, false, false},
		{"nomail.test", mx.FailureNoData, NoMailServer, DNSNXDomain, false, false},
		{"null.test", mx.FailureNullMX, NoMailServer, DNSNXDomain, false, false},
		{"noaddr.test", mx.FailureMXNoAddress, Temporary, Temporary, false, true},
		{"loop.test", mx.FailureProhibited, ProhibitedDestination, ProhibitedDestination, false, false},
	} {
		t.Run(tc.domain, func(t *testing.T) {
			_, err := r.Lookup(t.Context(), tc.domain)
			var me *mx.Error
			if !errors.As(err, &me) || me.Kind != tc.kind {
				t.Fatalf("Lookup(%s) = %v, want an *mx.Error of kind %s", tc.domain, err, tc.kind)
			}
			err = fmt.Errorf("resolve %s: %w", tc.domain, err)
			d := Classify(Attempt{Route: route.Direct, Err: err})
			if d.Class != tc.direct || d.Step != StepResolve || d.LocalFault != tc.local || (d.Kind == KindTemporary) != tc.retried {
				t.Errorf("direct: %s at %s (kind %s, local %v; %s), want %s at resolve (local %v, retried %v)",
					d.Class, d.Step, d.Kind, d.LocalFault, d.Reason, tc.direct, tc.local, tc.retried)
			}
			if rl := Classify(Attempt{Route: route.Relay, Err: err}); rl.Class != tc.relay || rl.Step != StepResolve {
				t.Errorf("relay: %s at %s (%s), want %s at resolve", rl.Class, rl.Step, rl.Reason, tc.relay)
			}
		})
	}
}
