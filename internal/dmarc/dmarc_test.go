package dmarc

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"mailout/internal/mx"
	"mailout/internal/mx/mxtest"
)

func TestParse(t *testing.T) {
	r, err := Parse("v=DMARC1; p=quarantine; sp=reject; pct=50; rua=mailto:a@example.com, mailto:b@example.net; adkim=s")
	if err != nil {
		t.Fatal(err)
	}
	if r.Policy != "quarantine" || r.SubPolicy != "reject" || r.Pct != 50 || len(r.RUA) != 2 || !r.StrictDKIM || r.StrictSPF {
		t.Errorf("%+v", r)
	}
	for _, bad := range []string{"p=none; v=DMARC1", "v=DMARC1", "v=DMARC1; p=maybe", "v=DMARC1; p=none; pct=101", "v=DMARC1; p=none; aspf=x", "v=DMARC1; p=none; junk"} {
		if _, err := Parse(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: %v, want a syntax error", bad, err)
		}
	}
}

func TestAligned(t *testing.T) {
	for _, tc := range []struct {
		from, d string
		strict  bool
		want    bool
	}{
		{"example.com", "example.com", true, true},
		{"news.example.com", "example.com", false, true},
		{"news.example.com", "example.com", true, false},
		{"example.com", "bounce.example.com", false, true},
		{"example.com", "example.net", false, false},
		{"a.example.co.uk", "b.example.co.uk", false, true},
		{"example.co.uk", "other.co.uk", false, false},
	} {
		if got := Aligned(tc.from, tc.d, tc.strict); got != tc.want {
			t.Errorf("Aligned(%s, %s, strict %v) = %v", tc.from, tc.d, tc.strict, got)
		}
	}
}

func TestLookup(t *testing.T) {
	z := mxtest.NewZone()
	add := func(name, v string) { z.RR(fmt.Sprintf("%s. 300 IN TXT %q", name, v)) }
	add("_dmarc.example.com", "v=DMARC1; p=reject; sp=none")
	add("_dmarc.sub.example.net", "v=DMARC1; p=none")
	add("_dmarc.two.test", "v=DMARC1; p=none")
	add("_dmarc.two.test", "v=DMARC1; p=reject")
	srv := mxtest.Start(t, z)
	res, err := mx.New(mx.Config{Servers: []string{srv.Addr()}, FailureTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := Lookup(ctx, res, "news.example.com")
	if err != nil || r.Domain != "example.com" || r.PolicyFor("news.example.com") != "none" || r.PolicyFor("example.com") != "reject" {
		t.Errorf("organisational domain: %+v, %v", r, err)
	}
	if r, err := Lookup(ctx, res, "sub.example.net"); err != nil || r.Domain != "sub.example.net" {
		t.Errorf("the From domain's own record: %+v, %v", r, err)
	}
	if _, err := Lookup(ctx, res, "example.org"); !errors.Is(err, ErrNoRecord) {
		t.Errorf("no record: %v", err)
	}
	if _, err := Lookup(ctx, res, "two.test"); !errors.Is(err, ErrMultiple) {
		t.Errorf("two records: %v", err)
	}
}
