package campaign

import (
	"bytes"
	"context"
	"errors"
	"net/mail"
	"strings"
	"testing"
	"time"

	"mailout/internal/smtptest"
	"mailout/internal/unsubscribe"
)

// A public URL given on resume (SetOneClick) applies to the messages
// still to send: each one, received by a real SMTP server, carries its
// recipient's own link, which maps back to that recipient's delivery.
func TestSetOneClickOnResume(t *testing.T) {
	ctx := context.Background()
	srv := smtptest.Start(t, smtptest.Options{})
	svc, _, c := newRelayCampaign(t, srv, "email,first_name\na@example.org,A\nb@example.org,B\n")
	var ie *InputError
	if err := svc.SetOneClick(ctx, c, OneClick{PublicURL: "http://mail.example.com"}); !errors.As(err, &ie) || !errors.Is(err, unsubscribe.ErrPublicURL) {
		t.Fatalf("SetOneClick with http on a public host: %v, want an *InputError", err)
	}
	if err := svc.SetOneClick(ctx, c, OneClick{PublicURL: "https://mail.example.com/news/"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Run(ctx, c, RunOptions{Profile: oneAtATime, Wait: time.Second}); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	for _, m := range msgs {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		lu := msg.Header.Get("List-Unsubscribe")
		const prefix = "<https://mail.example.com/news/u/"
		if !strings.HasPrefix(lu, prefix) || !strings.HasSuffix(lu, ">") || msg.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
			t.Fatalf("message to %v: List-Unsubscribe %q", m.Rcpts, lu)
		}
		target, err := svc.UnsubscribeTarget(ctx, strings.TrimSuffix(strings.TrimPrefix(lu, prefix), ">"))
		if err != nil || target.Delivery.Email != m.Rcpts[0] || target.Campaign.ID != c.ID {
			t.Errorf("message to %v: the link names %+v, %v", m.Rcpts, target, err)
		}
	}
	// The setting is stored with the campaign.
	fresh, err := svc.Store().Campaign(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := SettingsOf(fresh); s.PublicURL != "https://mail.example.com/news" {
		t.Errorf("stored public URL %q", s.PublicURL)
	}
}
