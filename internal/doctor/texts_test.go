package doctor

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// allVerdicts lists every verdict ID; the tests below keep the texts and
// docs/troubleshooting.md in step with it.
var allVerdicts = []string{VerdictOK, VerdictDNSBlocked, VerdictDNSRefused, VerdictDNSNoServer, VerdictMXLookupFailed,
	VerdictPort25Blocked, VerdictPort25Refused, VerdictNoRoute, VerdictPort25Intercept, VerdictTLSIntercepted,
	VerdictSMTPRejected, VerdictRelayHostUnknown, VerdictRelayDNS, VerdictRelayWrongPort, VerdictRelayRefused,
	VerdictRelayBlocked, VerdictTLSModeMismatch, VerdictRelayTLSFailed, VerdictAuthRequired, VerdictAuthFailed,
	VerdictAuthUnavailable, VerdictRelayDenied, VerdictSenderRejected, VerdictRelayProtocol,
	// The sender checks.
	VerdictSenderOK, VerdictSenderDNS, VerdictSourceUnknown, VerdictSPFMissing, VerdictSPFPermError,
	VerdictSPFTooManyLookups, VerdictSPFNotRoute, VerdictSPFPTR, VerdictSPFAllowsAnyone, VerdictDKIMNotConfigured, VerdictDKIMMissing,
	VerdictDKIMKeyMismatch, VerdictDKIMRevoked, VerdictDKIMTesting, VerdictDKIMInvalid, VerdictDMARCMissing,
	VerdictDMARCInvalid, VerdictDMARCPolicyNone, VerdictDMARCNoRUA, VerdictDMARCNotAligned, VerdictFCrDNSMissing,
	VerdictFCrDNSMismatch, VerdictHELOMismatch}

func TestEveryVerdictHasTextsAndDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/troubleshooting.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range allVerdicts {
		for _, lang := range []string{"en", "es"} {
			v := verdictTexts[lang][id]
			if v.title == "" || v.advice == "" {
				t.Errorf("%s: no %s text", id, lang)
			}
			if !strings.Contains(string(doc), v.advice) && !strings.Contains(v.advice, "{") {
				t.Errorf("docs/troubleshooting.md lacks the %s advice of %s", lang, id)
			}
		}
		if !strings.Contains(string(doc), "### `"+id+"`") {
			t.Errorf("docs/troubleshooting.md has no section for %s", id)
		}
	}
	if n := len(verdictTexts["en"]); n != len(allVerdicts) || len(verdictTexts["es"]) != n {
		t.Errorf("%d en texts, %d es texts, %d verdicts", n, len(verdictTexts["es"]), len(allVerdicts))
	}
}

func TestPackageDoc(t *testing.T) {
	src, err := os.ReadFile("doctor.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "// Package doctor ") || !strings.Contains(string(src), "Place in the flow") {
		t.Error("doctor.go lacks a package doc comment placing it in the flow")
	}
}

// TestVerdictTextsSayTheSameInBothLanguages: what a user types or looks
// for — flags, placeholders, port numbers — is in both languages.
func TestVerdictTextsSayTheSameInBothLanguages(t *testing.T) {
	tokens := regexp.MustCompile(`--[a-z-]+|\{[a-z]+\}|\b\d{2,3}\b`)
	set := func(s string) string {
		m := tokens.FindAllString(s, -1)
		slices.Sort(m)
		return strings.Join(slices.Compact(m), " ")
	}
	for _, id := range allVerdicts {
		en, es := verdictTexts["en"][id], verdictTexts["es"][id]
		if en.title == es.title || en.advice == es.advice {
			t.Errorf("%s: the Spanish text is the English one", id)
		}
		if a, b := set(en.advice), set(es.advice); a != b {
			t.Errorf("%s: en names %q, es names %q", id, a, b)
		}
	}
}

// The web app titles its checklist with CheckTitle: the titles of the
// text checklist, in both languages.
func TestCheckTitleIsTheChecklistsTitle(t *testing.T) {
	if got := CheckTitle("dns.udp", "es"); got != checkTitles["es"]["dns.udp"] || got == "dns.udp" {
		t.Errorf("CheckTitle(dns.udp, es) = %q", got)
	}
	if got := CheckTitle("dns.udp", "fr"); got != checkTitles["en"]["dns.udp"] {
		t.Errorf("CheckTitle(dns.udp, fr) = %q, want English", got)
	}
	if got := CheckTitle("no.such", "en"); got != "no.such" {
		t.Errorf("an unknown check is titled %q", got)
	}
}
