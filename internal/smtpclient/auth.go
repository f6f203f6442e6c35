package smtpclient

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-sasl"
)

// chooseMechanism picks a SASL mechanism among those offered. Over TLS PLAIN
// is preferred (one round trip, the channel protects it), then CRAM-MD5, then
// LOGIN. Without TLS (only with AllowPlaintextAuth) CRAM-MD5 comes first
// because it does not put the password on the wire.
func chooseMechanism(offered []string, overTLS bool) string {
	prefs := []string{"PLAIN", "CRAM-MD5", "LOGIN"}
	if !overTLS {
		prefs = []string{"CRAM-MD5", "PLAIN", "LOGIN"}
	}
	for _, m := range prefs {
		if slices.Contains(offered, m) {
			return m
		}
	}
	return ""
}

// auth runs AUTH (RFC 4954). Credentials never appear in the transcript or
// in errors.
func (c *Client) auth(ctx context.Context) error {
	_, overTLS := c.TLS()
	if !overTLS && !c.cfg.AllowPlaintextAuth {
		return &Error{Command: "AUTH", Text: "refusing to send credentials without TLS"}
	}
	mech := chooseMechanism(c.AuthMechanisms(), overTLS)
	if mech == "" {
		return &Error{Command: "AUTH", Text: fmt.Sprintf("server offers no supported AUTH mechanism (offered: %q)", c.ext["AUTH"])}
	}
	var cl sasl.Client
	switch mech {
	case "PLAIN":
		cl = sasl.NewPlainClient("", c.cfg.Username, c.cfg.Password)
	case "LOGIN":
		cl = &loginClient{user: c.cfg.Username, pass: c.cfg.Password}
	case "CRAM-MD5":
		cl = &cramMD5Client{user: c.cfg.Username, pass: c.cfg.Password}
	}
	_, ir, err := cl.Start()
	if err != nil {
		return &Error{Command: "AUTH", Err: err}
	}
	// Replies read from here on may echo what we send: keep the password
	// and every response out of them (and so out of errors, transcripts,
	// the store and the screen).
	c.secrets = []string{c.cfg.Password}
	defer func() { c.secrets = nil }()
	line := "AUTH " + mech
	if ir != nil {
		// RFC 4954 §4: an empty initial response is sent as "=".
		enc := base64.StdEncoding.EncodeToString(ir)
		c.secrets = append(c.secrets, enc)
		if enc == "" {
			enc = "="
		}
		line += " " + enc
	}
	stop := c.deadline(ctx, c.to.Auth)
	defer stop()
	c.redact = false
	defer func() { c.redact = false }()
	for steps := 0; ; steps++ {
		if err := c.writeLine(line); err != nil {
			return c.ioError(ctx, "AUTH", err)
		}
		if err := c.bw.Flush(); err != nil {
			return c.ioError(ctx, "AUTH", err)
		}
		c.redact = true
		r, err := c.read(ctx, "AUTH")
		if err != nil {
			return err
		}
		switch {
		case r.Code == CodeAuthSucceeded:
			return nil
		case r.Code != CodeAuthContinue:
			return c.replyError("AUTH", r)
		case steps >= 5:
			return c.cancelAuth(ctx, "too many AUTH challenges")
		}
		challenge, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.Text()))
		if err != nil {
			return c.cancelAuth(ctx, "server sent a challenge that is not base64")
		}
		resp, err := cl.Next(challenge)
		if err != nil {
			return c.cancelAuth(ctx, "unexpected AUTH challenge")
		}
		line = base64.StdEncoding.EncodeToString(resp)
		c.secrets = append(c.secrets, line)
	}
}

// redactSecrets replaces every occurrence of a secret in s by
// "<redacted>". A base64 secret is matched without its "=" padding too, so
// an echo that drops it is caught as well.
func redactSecrets(s string, secrets []string) string {
	for _, sec := range secrets {
		for _, x := range []string{sec, strings.TrimRight(sec, "=")} {
			if x != "" {
				s = strings.ReplaceAll(s, x, "<redacted>")
			}
		}
	}
	return s
}

// cancelAuth sends "*" to abort the exchange (RFC 4954 §4) and reports why.
func (c *Client) cancelAuth(ctx context.Context, why string) error {
	if err := c.writeLine("*"); err == nil && c.bw.Flush() == nil {
		_, _ = c.read(ctx, "AUTH")
	}
	c.broken = true
	return &Error{Command: "AUTH", Text: why}
}

// loginClient is the obsolete LOGIN mechanism (draft-murchison-sasl-login):
// no initial response, then the user name and the password in answer to
// the server's "Username:" and "Password:" prompts.
type loginClient struct{ user, pass string }

func (a *loginClient) Start() (string, []byte, error) { return "LOGIN", nil, nil }

func (a *loginClient) Next(challenge []byte) ([]byte, error) {
	switch p := strings.ToLower(strings.TrimSpace(string(challenge))); {
	case strings.HasPrefix(p, "user"):
		return []byte(a.user), nil
	case strings.HasPrefix(p, "pass"):
		return []byte(a.pass), nil
	}
	return nil, sasl.ErrUnexpectedServerChallenge
}

// cramMD5Client is CRAM-MD5 (RFC 2195): the response is the user name and
// the hex HMAC-MD5 of the server's challenge keyed with the password.
type cramMD5Client struct{ user, pass string }

func (a *cramMD5Client) Start() (string, []byte, error) { return "CRAM-MD5", nil, nil }

func (a *cramMD5Client) Next(challenge []byte) ([]byte, error) {
	m := hmac.New(md5.New, []byte(a.pass))
	m.Write(challenge)
	return []byte(a.user + " " + hex.EncodeToString(m.Sum(nil))), nil
}
