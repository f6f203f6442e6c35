package smtptest

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

type backend struct{ s *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.s.mu.Lock()
	b.s.open++
	b.s.peak = max(b.s.peak, b.s.open)
	b.s.mu.Unlock()
	return &session{s: b.s, c: c}, nil
}

// session implements smtp.Session and smtp.AuthSession for one connection.
type session struct {
	s        *Server
	c        *smtp.Conn
	authUser string
	from     string
	rcpts    []string
	// set by LocalPartFaults at RCPT, applied after the body
	bodyFault *Fault
}

// errDropped is returned after the connection was closed on purpose.
var errDropped = errors.New("smtptest: connection dropped")

func (s *session) Reset() {
	s.from, s.rcpts, s.bodyFault = "", nil, nil
}

// Logout is called once when the connection closes, however it ends.
func (s *session) Logout() error {
	s.s.mu.Lock()
	s.s.open--
	s.s.mu.Unlock()
	return nil
}

// apply carries out a fault: stall, drop, or an error reply. A 421 closes
// the connection after the reply (RFC 5321 §3.8), which go-smtp does not do
// by itself, so the line is written here directly.
func (s *session) apply(f *Fault) error {
	if f == nil {
		return nil
	}
	if !s.s.stall(f.Stall) {
		s.c.Conn().Close()
		return errDropped
	}
	if f.Drop {
		s.c.Conn().Close()
		return errDropped
	}
	if f.Code == 0 {
		return nil
	}
	if f.Code == 421 {
		fmt.Fprintf(s.c.Conn(), "%s\r\n", replyLine(421, f.Enhanced, f.Text, "Service not available, closing transmission channel"))
		s.c.Conn().Close()
		return errDropped
	}
	return smtpError(f)
}

func smtpError(f *Fault) *smtp.SMTPError {
	e := &smtp.SMTPError{Code: f.Code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: f.Text}
	if e.Message == "" {
		e.Message = "Refused by fault script"
	}
	if parts := strings.Split(f.Enhanced, "."); len(parts) == 3 {
		var ec smtp.EnhancedCode
		for i, p := range parts {
			ec[i], _ = strconv.Atoi(p)
		}
		e.EnhancedCode = ec
	}
	return e
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.s.opt.RequireAuth && s.authUser == "" {
		// RFC 4954 §6.
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	if err := s.apply(s.s.fault(Event{Step: "mail", From: from})); err != nil {
		return err
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if len(s.s.opt.RelayDomains) > 0 && s.authUser == "" && !slices.Contains(s.s.opt.RelayDomains, domainOf(to)) {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relay access denied"}
	}
	if err := s.apply(s.s.fault(Event{Step: "rcpt", From: s.from, Rcpt: to})); err != nil {
		return err
	}
	if s.s.opt.LocalPartFaults {
		if err := s.localPartFault(to); err != nil {
			return err
		}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

// localPartFault is the dev sink's behaviour by recipient local part.
func (s *session) localPartFault(to string) error {
	local, _, _ := strings.Cut(to, "@")
	local, _, _ = strings.Cut(strings.ToLower(local), "+")
	switch local {
	case "greylist":
		key := strings.ToLower(s.from) + "\x00" + strings.ToLower(to)
		s.s.mu.Lock()
		seen := s.s.greylist[key]
		s.s.greylist[key] = true
		s.s.mu.Unlock()
		if !seen {
			return s.apply(&Fault{Code: 451, Enhanced: "4.7.1", Text: "Greylisted, try again later"})
		}
	case "unknown":
		return s.apply(&Fault{Code: 550, Enhanced: "5.1.1", Text: "User unknown"})
	case "full":
		return s.apply(&Fault{Code: 452, Enhanced: "4.2.2", Text: "Mailbox full"})
	case "ratelimit":
		return s.apply(&Fault{Code: 421, Enhanced: "4.7.28", Text: "Rate limited, try again later"})
	case "temp":
		return s.apply(&Fault{Code: 451, Enhanced: "4.3.0", Text: "Temporary local problem"})
	case "reject":
		s.bodyFault = &Fault{Code: 554, Enhanced: "5.7.1", Text: "Message content rejected"}
	case "drop":
		s.bodyFault = &Fault{Drop: true}
	case "dropafter":
		s.bodyFault = &Fault{DropAfterBody: true}
	case "slow":
		s.bodyFault = &Fault{Stall: time.Second}
	}
	return nil
}

func (s *session) Data(r io.Reader) error {
	f := s.s.fault(Event{Step: "data", From: s.from})
	if f == nil && s.bodyFault != nil && s.bodyFault.Drop {
		f = s.bodyFault
	}
	if f != nil && f.Drop {
		// Mid-DATA: take a little of the body, then hang up.
		var buf [512]byte
		_, _ = r.Read(buf[:])
		s.c.Conn().Close()
		return errDropped
	}
	var data bytes.Buffer
	if _, err := io.Copy(&data, r); err != nil {
		return err // go-smtp maps a size overflow to 552
	}
	if f != nil {
		if f.DropAfterBody {
			s.c.Conn().Close()
			return errDropped
		}
		if err := s.apply(f); err != nil {
			return err
		}
	}
	bf := s.s.fault(Event{Step: "body", From: s.from})
	if bf == nil {
		bf = s.bodyFault
	}
	if bf != nil {
		if bf.DropAfterBody {
			s.c.Conn().Close()
			return errDropped
		}
		if err := s.apply(bf); err != nil {
			return err
		}
	}
	_, isTLS := s.c.TLSConnectionState()
	s.s.deliver(Received{At: time.Now(), From: s.from, Rcpts: slices.Clone(s.rcpts), Data: data.Bytes(), TLS: isTLS, AuthUser: s.authUser,
		Client: s.c.Conn().RemoteAddr().String(), HELO: s.c.Hostname()})
	return nil
}

func (s *session) AuthMechanisms() []string {
	if s.s.opt.Auth == nil {
		return nil
	}
	return s.s.opt.AuthMechanisms
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.s.opt.Auth == nil || !slices.Contains(s.s.opt.AuthMechanisms, mech) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	check := func(user, pass string) error {
		want, ok := s.s.opt.Auth[user]
		if !ok || !hmac.Equal([]byte(want), []byte(pass)) {
			return smtp.ErrAuthFailed
		}
		s.authUser = user
		return nil
	}
	switch mech {
	case "PLAIN":
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return smtp.ErrAuthFailed
			}
			return check(user, pass)
		}), nil
	case "LOGIN":
		return &loginServer{check: check}, nil
	case "CRAM-MD5":
		return &cramMD5Server{secrets: s.s.opt.Auth, ok: func(u string) { s.authUser = u }}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of LOGIN (draft-murchison-sasl-login):
// "Username:" then "Password:" prompts; an initial response is the user.
type loginServer struct {
	check func(user, pass string) error
	user  string
	step  int
}

func (a *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch a.step {
	case 0:
		a.step = 1
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		a.user = string(resp)
		a.step = 2
		return []byte("Password:"), false, nil
	case 2:
		return nil, true, a.check(a.user, string(resp))
	}
	return nil, false, sasl.ErrUnexpectedClientResponse
}

// cramMD5Server is the server side of CRAM-MD5 (RFC 2195).
type cramMD5Server struct {
	secrets   map[string]string
	ok        func(user string)
	challenge []byte
}

func (a *cramMD5Server) Next(resp []byte) ([]byte, bool, error) {
	if a.challenge == nil {
		if resp != nil {
			return nil, false, sasl.ErrUnexpectedClientResponse
		}
		a.challenge = []byte("<" + rand.Text() + "@smtptest>")
		return a.challenge, false, nil
	}
	user, digest, found := strings.Cut(string(resp), " ")
	pass, known := a.secrets[user]
	if !found || !known {
		return nil, false, smtp.ErrAuthFailed
	}
	m := hmac.New(md5.New, []byte(pass))
	m.Write(a.challenge)
	if !hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), []byte(strings.ToLower(digest))) {
		return nil, false, smtp.ErrAuthFailed
	}
	a.ok(user)
	return nil, true, nil
}
