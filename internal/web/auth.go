package web

import (
	"errors"
	"net"
	"net/http"
	"net/mail"
	"strings"

	"mailout/internal/store"
)

// sessionCookie holds the session's secret value; the accounts service
// stores only its hash.
const sessionCookie = "mailout_session"

// minPassword is the shortest password the set-up page accepts (the
// accounts service checks it again).
const minPassword = 10

func userOf(r *http.Request) *store.User {
	u, _ := r.Context().Value(userKey).(*store.User)
	return u
}

type authForm struct {
	Email string
}

// setupPage is the first run: no user exists, and the first one becomes
// the admin. Once one exists it sends to the sign-in page.
func (s *server) setupPage(w http.ResponseWriter, r *http.Request) {
	has, err := s.cfg.Accounts.HasAdmin(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if has {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "setup", "setup.title", authForm{}, "")
}

func (s *server) setup(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	has, err := s.cfg.Accounts.HasAdmin(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if has {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	password := r.PostFormValue("password")
	form := authForm{Email: email}
	if _, err := mail.ParseAddress(email); err != nil {
		s.render(w, r, http.StatusUnprocessableEntity, "setup", "setup.title", form, "setup.bademail")
		return
	}
	if len([]rune(password)) < minPassword {
		s.render(w, r, http.StatusUnprocessableEntity, "setup", "setup.title", form, "setup.shortpassword")
		return
	}
	if password != r.PostFormValue("password2") {
		s.render(w, r, http.StatusUnprocessableEntity, "setup", "setup.title", form, "setup.mismatch")
		return
	}
	if _, err := s.cfg.Accounts.CreateAdmin(ctx, email, password); err != nil {
		if e := s.cfg.AccountErrors.AdminExists; e != nil && errors.Is(err, e) {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		s.log.Warn("first-run set-up refused", "err", err)
		s.render(w, r, http.StatusUnprocessableEntity, "setup", "setup.title", form, "setup.refused")
		return
	}
	s.signIn(w, r, email, password)
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	has, err := s.cfg.Accounts.HasAdmin(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !has {
		http.Redirect(w, r, "/setup", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "login", "login.title", authForm{}, "")
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	s.signIn(w, r, strings.TrimSpace(r.PostFormValue("email")), r.PostFormValue("password"))
}

// signIn opens a session and sets its cookie, or shows the sign-in page
// again with why not (never the password).
func (s *server) signIn(w http.ResponseWriter, r *http.Request, email, password string) {
	remote, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		remote = r.RemoteAddr
	}
	value, err := s.cfg.Accounts.Login(r.Context(), email, password, remote)
	if err != nil {
		key, status := "login.bad", http.StatusUnauthorized
		if e := s.cfg.AccountErrors.RateLimited; e != nil && errors.Is(err, e) {
			key, status = "login.ratelimited", http.StatusTooManyRequests
		}
		s.render(w, r, status, "login", "login.title", authForm{Email: email}, key)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, "/campaigns", http.StatusSeeOther)
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.cfg.Accounts.Logout(r.Context(), c.Value); err != nil {
			s.log.Warn("logout", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, MaxAge: -1,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
