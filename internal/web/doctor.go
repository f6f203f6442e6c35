package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"mailout/internal/campaign"
	"mailout/internal/doctor"
	"mailout/internal/route"
)

// doctorTimeout bounds one diagnosis from the doctor page.
const doctorTimeout = 2 * time.Minute

// doctorForm is the doctor page's form as typed, without the password,
// which is never sent back to the browser.
type doctorForm struct {
	Mode    string // "relay" or "direct"
	Host    string
	Port    string
	TLS     string // "starttls", "tls" or "none"
	User    string
	DNS     string
	HELO    string
	Address string
}

type doctorView struct {
	Form      doctorForm
	Diagnosis *diagnosisView
	Discovery *doctor.Discovery
	// NotFound: Discover found no server for the address.
	NotFound bool
	// Sender is the "Check my sender domain" form and its findings
	// (sender.go).
	Sender *senderView
}

func defaultDoctorForm() doctorForm { return doctorForm{Mode: "relay", Port: "587", TLS: "starttls"} }

func (s *server) doctorPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "doctor", "doctor.title", &doctorView{Form: defaultDoctorForm(), Sender: s.emptySender(r)}, "")
}

// relayURL is the relay account URL of the form, with the password.
func (f *doctorForm) relayURL(password string) (string, error) {
	port, err := strconv.Atoi(f.Port)
	if err != nil || port < 1 || port > 65535 || f.Host == "" || strings.ContainsAny(f.Host, "/@:?# ") {
		return "", errBadRoute
	}
	scheme := map[string]string{"starttls": "smtp", "tls": "smtps", "none": "smtp+insecure"}[f.TLS]
	if scheme == "" {
		return "", errBadRoute
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(f.Host, strconv.Itoa(port))}
	switch {
	case f.User != "" && password != "":
		u.User = url.UserPassword(f.User, password)
	case f.User != "":
		u.User = url.User(f.User)
	}
	return u.String(), nil
}

var errBadRoute = errors.New("incomplete route")

// doctorRun runs the doctor's checks on the route of the form and shows
// the checklist, evidence, verdict and advice.
func (s *server) doctorRun(w http.ResponseWriter, r *http.Request) {
	f := doctorForm{
		Mode: r.PostFormValue("mode"), Host: strings.TrimSpace(r.PostFormValue("host")),
		Port: strings.TrimSpace(r.PostFormValue("port")), TLS: r.PostFormValue("tls"),
		User: strings.TrimSpace(r.PostFormValue("user")), DNS: strings.TrimSpace(r.PostFormValue("dns")),
		HELO: strings.TrimSpace(r.PostFormValue("helo")),
	}
	v := &doctorView{Form: f, Sender: s.emptySender(r)}
	rc := campaign.RouteConfig{HELO: f.HELO, DNS: strings.FieldsFunc(f.DNS, func(r rune) bool { return r == ',' || r == ' ' })}
	def := route.Direct
	if f.Mode == "relay" {
		u, err := f.relayURL(r.PostFormValue("password"))
		if err != nil {
			s.render(w, r, http.StatusUnprocessableEntity, "doctor", "doctor.title", v, "doctor.badroute")
			return
		}
		rc.Relays, def = []string{u}, route.Relay
	}
	rc.Route = string(def)
	rt, err := rc.Check(def, campaign.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		// The error may quote the URL typed, password included: it is
		// logged without it and not shown.
		var ie *campaign.InputError
		if errors.As(err, &ie) {
			s.log.Info("doctor: route refused", "field", ie.Field)
		}
		s.render(w, r, http.StatusUnprocessableEntity, "doctor", "doctor.title", v, "doctor.badroute")
		return
	}
	cfg := rt.Doctor()
	if s.cfg.Doctor != nil {
		s.cfg.Doctor(&cfg)
	}
	ctx, cancel := context.WithTimeout(r.Context(), doctorTimeout)
	defer cancel()
	v.Diagnosis = newDiagnosisView(doctor.Run(ctx, cfg), langOf(r))
	s.render(w, r, http.StatusOK, "doctor", "doctor.title", v, "")
}

// discover finds the SMTP settings of a mailbox address, the way mail
// programs do (doctor --account on the command line).
func (s *server) discover(w http.ResponseWriter, r *http.Request) {
	f := doctorForm{Mode: "relay", Port: "587", TLS: "starttls", Address: strings.TrimSpace(r.PostFormValue("address"))}
	v := &doctorView{Form: f, Sender: s.emptySender(r)}
	dc := doctor.DiscoverConfig{Address: f.Address}
	if s.cfg.Discover != nil {
		s.cfg.Discover(&dc)
	}
	ctx, cancel := context.WithTimeout(r.Context(), doctorTimeout)
	defer cancel()
	d, err := doctor.Discover(ctx, dc)
	if d == nil {
		s.render(w, r, http.StatusUnprocessableEntity, "doctor", "doctor.title", v, "doctor.badaddress")
		return
	}
	v.Discovery, v.NotFound = d, err != nil
	if err == nil {
		// Fill the relay form with what was found: one click to check it.
		v.Form.Host, v.Form.Port, v.Form.User = d.Host, strconv.Itoa(d.Port), d.Username
		v.Form.TLS = map[string]string{"implicit": "tls", "starttls": "starttls", "none": "none"}[d.TLS]
	}
	s.render(w, r, http.StatusOK, "doctor", "doctor.title", v, "")
}
