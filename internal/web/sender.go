package web

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"os"
	"strings"

	"mailout/internal/campaign"
	"mailout/internal/doctor"
	"mailout/internal/route"
	"mailout/internal/setting"
)

// senderForm is the doctor page's "Check my sender domain" form as typed.
type senderForm struct {
	From       string
	ReturnPath string
	// Selector and KeyFile: the DKIM key whose record to check. KeyFile
	// is a path on the server, read by the server as a campaign's key is
	// at every start; the key's bytes are never shown.
	Selector string
	KeyFile  string
	// Route is "direct" or "relay:" and the name of a stored relay
	// account.
	Route    string
	SourceIP string
}

// senderView is the form, the routes it offers and the findings.
type senderView struct {
	Form   senderForm
	Relays []string
	Result *diagnosisView
	// Problems are every problem the sender checks found, first the one
	// of the verdict; each with its title and advice in the page's
	// language.
	Problems []problemRow
	// KeyError says why the key file cannot be used (names the file and
	// the problem, never the key).
	KeyError string
}

type problemRow struct {
	doctor.Verdict
	Title, Advice string
}

// senderFormOf reads the form, trimmed.
func senderFormOf(r *http.Request) senderForm {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return senderForm{From: v("from"), ReturnPath: v("return_path"), Selector: v("dkim_selector"),
		KeyFile: v("dkim_key"), Route: v("sender_route"), SourceIP: v("source_ip")}
}

// relayNames are the stored relay accounts the sender form offers.
func relayNames(st *setting.Settings) []string {
	var out []string
	for _, r := range st.Relays {
		out = append(out, r.Name)
	}
	return out
}

// senderRun runs the doctor's sender checks (doctor --sender on the
// command line) for the form's From on a route of the stored settings:
// a relay account (SPF must cover the relay's addresses) or direct
// delivery with the settings' DNS servers and EHLO name.
func (s *server) senderRun(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, err := s.appSettings(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := senderFormOf(r)
	v := &doctorView{Form: defaultDoctorForm(), Sender: &senderView{Form: f, Relays: relayNames(st)}}
	bad := func(key string) {
		s.render(w, r, http.StatusUnprocessableEntity, "doctor", "doctor.title", v, key)
	}
	sc := doctor.SenderConfig{From: f.From, ReturnPath: f.ReturnPath}
	if err := sc.Check(); err != nil {
		bad("doctor.sender.badfrom")
		return
	}
	kind, relay := "direct", ""
	if name, ok := strings.CutPrefix(f.Route, "relay:"); ok {
		kind, relay = "relay", name
	} else if f.Route != "direct" {
		bad("doctor.sender.badroute")
		return
	}
	if f.SourceIP != "" {
		a, err := netip.ParseAddr(f.SourceIP)
		if err != nil || kind != "direct" {
			bad("doctor.sender.badsourceip")
			return
		}
		sc.SourceIP = a
	}
	var names []string
	if relay != "" {
		names = []string{relay}
	}
	rc, env, err := st.Route(kind, names)
	if err != nil {
		bad("doctor.sender.badroute")
		return
	}
	if kind == "direct" {
		// The fallback relay does not send in the From's name on the
		// direct route's first try: check the direct route alone.
		rc.Relays, rc.RelayPasswordSettings, rc.FallbackAfter = nil, nil, 0
	}
	rt, err := rc.Check(route.Route(kind), env)
	if err != nil {
		var ie *campaign.InputError
		if errors.As(err, &ie) {
			s.log.Info("doctor: sender route refused", "field", ie.Field)
		}
		bad("doctor.sender.badroute")
		return
	}
	if f.KeyFile != "" {
		fromDomain := sc.From[strings.LastIndexByte(sc.From, '@')+1:]
		d := campaign.DKIMSettings{Domain: fromDomain, Selector: f.Selector, KeyFile: f.KeyFile}
		if d.Selector == "" {
			d.Selector = "mailout"
		}
		// The same reading as a campaign's at its start: a file of the
		// server. LoadSigner's errors name the file and the problem,
		// never key bytes.
		if sc.DKIM, _, err = d.LoadSigner(os.ReadFile, fromDomain); err != nil {
			v.Sender.KeyError = err.Error()
			bad("doctor.sender.badkey")
			return
		}
	}
	cfg := rt.Doctor()
	// The settings' DNS servers answer the sender checks on either route.
	cfg.DNS = st.DNS
	if s.cfg.Doctor != nil {
		s.cfg.Doctor(&cfg)
	}
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	rep := doctor.CheckSender(ctx, cfg, sc)
	lang := langOf(r)
	v.Sender.Result = newDiagnosisView(rep, lang)
	for _, p := range rep.Problems {
		v.Sender.Problems = append(v.Sender.Problems, problemRow{Verdict: p, Title: p.Title[lang], Advice: p.Advice[lang]})
	}
	s.render(w, r, http.StatusOK, "doctor", "doctor.title", v, "")
}

// emptySender is the sender form as the page first shows it: the stored
// relay accounts to choose from, the first one chosen, else direct
// delivery. Settings that cannot be read offer direct delivery only.
func (s *server) emptySender(r *http.Request) *senderView {
	v := &senderView{Form: senderForm{Route: "direct", Selector: "mailout"}}
	if st, err := s.appSettings(r.Context()); err == nil {
		v.Relays = relayNames(st)
	} else {
		s.log.Warn("doctor: reading the settings", "err", err)
	}
	if len(v.Relays) > 0 {
		v.Form.Route = "relay:" + v.Relays[0]
	}
	return v
}
