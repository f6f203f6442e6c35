package mx_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"mailout/internal/mx"
	"mailout/internal/mx/mxtest"
)

func TestLookupTXTMXNamesPTR(t *testing.T) {
	long := strings.Repeat("k", 300)
	z := mxtest.NewZone().
		RR(`example.com. 300 IN TXT "v=spf1 " "-all"`).
		RR(`s1._domainkey.example.com. 300 IN TXT "v=DKIM1; p=`+long[:200]+`" "`+long[200:]+`"`).
		MX("example.com", 20, "mx2.example.com").MX("example.com", 10, "MX1.example.com").
		RR("5.2.0.192.in-addr.arpa. 300 IN PTR mail.example.com.").
		A("mail.example.com", "192.0.2.5")
	r := newResolver(t, mx.Config{}, mxtest.Start(t, z).Addr())
	ctx := context.Background()

	if got, err := r.LookupTXT(ctx, "example.com"); err != nil || !slices.Equal(got, []string{"v=spf1 -all"}) {
		t.Errorf("TXT: %q, %v (character-strings joined without a separator)", got, err)
	}
	if got, err := r.LookupTXT(ctx, "s1._domainkey.example.com"); err != nil || len(got) != 1 || !strings.HasSuffix(got[0], long) {
		t.Errorf("long TXT: %q, %v", got, err)
	}
	if got, err := r.LookupMXNames(ctx, "example.com"); err != nil || !slices.Equal(got, []string{"mx1.example.com", "mx2.example.com"}) {
		t.Errorf("MX names: %q, %v", got, err)
	}
	if got, err := r.LookupPTR(ctx, netip.MustParseAddr("192.0.2.5")); err != nil || !slices.Equal(got, []string{"mail.example.com"}) {
		t.Errorf("PTR: %q, %v", got, err)
	}
	_, err := r.LookupTXT(ctx, "nothing.example.com")
	wantError(t, err, mx.FailureNXDomain, false)
	_, err = r.LookupTXT(ctx, "mail.example.com")
	wantError(t, err, mx.FailureNoData, false)
	_, err = r.LookupPTR(ctx, netip.MustParseAddr("192.0.2.6"))
	wantError(t, err, mx.FailureNXDomain, false)
}
