package mailbox

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"mime"
	"net/mail"
	"strings"
	"time"

	"mailout/internal/bounce"
	"mailout/internal/outcome"
	"mailout/internal/smtpclient"
	"mailout/internal/store"
	"mailout/internal/verp"
)

// Summary counts what one Fetch did.
type Summary struct {
	// Read is how many new messages were read from the mailbox.
	Read int
	// Bounced: final failures applied to their delivery; Suppressed: of
	// those and the complaints, how many put the address on the
	// suppression list.
	Bounced    int
	Suppressed int
	// Complaints applied (feedback-loop reports).
	Complaints int
	// Delays: "still trying" notices, read and left at that.
	Delays int
	// Unchanged: reports about a delivery that already had one.
	Unchanged int
	// Review: messages kept for review (not a bounce, or no delivery).
	Review int
}

// Fetch reads the mailbox once and applies every message not processed
// before (see the package comment). It is what `mailout bounces fetch`
// runs, and what `serve` can run on a timer.
func Fetch(ctx context.Context, c *Config, st store.Store, log *slog.Logger) (*Summary, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	signer, err := verp.LoadOrCreate(ctx, st)
	if err != nil {
		return nil, err
	}
	box, err := Open(ctx, c)
	if err != nil {
		return nil, err
	}
	defer box.Close()
	uids, err := box.List(ctx)
	if err != nil {
		return nil, err
	}
	name := c.String()
	sum := &Summary{}
	for _, uid := range uids {
		seen, err := st.MailboxSeen(ctx, name, uid)
		if err != nil {
			return sum, err
		}
		if !seen {
			data, err := box.Get(ctx, uid)
			switch {
			case errors.Is(err, ErrTooLarge):
				// Not a bounce of ours (a bounce holds at most the
				// message sent): kept for review with its start, so
				// that one message cannot hold up the ones after it.
				sum.Read++
				if err := keepForReview(ctx, st, name, uid, data, err.Error(), sum, log); err != nil {
					return sum, err
				}
			case err != nil:
				return sum, err
			default:
				sum.Read++
				if err := apply(ctx, st, signer, name, uid, data, sum, log); err != nil {
					return sum, err
				}
			}
			if err := st.MarkMailboxSeen(ctx, name, uid, time.Time{}); err != nil {
				return sum, err
			}
		}
		// Flagged after it is remembered: a crash in between reads it
		// again next time, and the store skips it.
		if err := box.Done(ctx, uid); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// keepForReview stores a message that is no bounce, or matches no delivery,
// for a person to look at.
func keepForReview(ctx context.Context, st store.Store, mailbox, uid string, data []byte, reason string,
	sum *Summary, log *slog.Logger) error {
	subject, sender := headerOf(data)
	// Words from the mailbox are data: stored and printed, never
	// terminal control.
	kept, err := st.KeepForReview(ctx, store.Review{Mailbox: mailbox, UID: uid, Reason: smtpclient.CleanText(reason),
		Subject: subject, Sender: sender, Data: data})
	if kept {
		sum.Review++
		log.Info("bounce mailbox: kept for review", "uid", uid, "reason", reason)
	}
	return err
}

// apply parses one message and records it.
func apply(ctx context.Context, st store.Store, signer *verp.Signer, mailbox, uid string, data []byte,
	sum *Summary, log *slog.Logger) error {
	review := func(reason string) error {
		return keepForReview(ctx, st, mailbox, uid, data, reason, sum, log)
	}
	rep, err := bounce.Parse(data)
	if err != nil {
		return review(err.Error())
	}
	if rep.Kind == bounce.Delay {
		sum.Delays++
		return nil
	}
	d, err := match(ctx, st, signer, rep)
	if errors.Is(err, store.ErrNotFound) {
		return review("no delivery of this database matches the report (VERP token or Message-ID)")
	}
	if err != nil {
		return err
	}
	b := store.Bounce{CampaignID: d.CampaignID, DeliveryID: d.ID, Attempt: d.Attempts}
	if rep.Kind == bounce.Complaint {
		b.Complaint, b.Suppress = true, true
		b.Text = "complaint: " + rep.FeedbackType
	} else {
		r := pick(rep.Recipients)
		b.Class, b.Code, b.Enhanced, b.Text = r.Result.Class, r.Code, r.Status, r.Diagnostic
		// A hard bounce that says the address cannot receive mail goes on
		// the suppression list, like a refusal at RCPT.
		b.Suppress = r.Hard && outcome.SuppressesAddress(r.Result.Class)
	}
	changed, err := st.ApplyBounce(ctx, b)
	if err != nil {
		return err
	}
	switch {
	case !changed:
		sum.Unchanged++
		return nil
	case b.Complaint:
		sum.Complaints++
	default:
		sum.Bounced++
	}
	if b.Suppress {
		sum.Suppressed++
	}
	log.Info("bounce mailbox: applied", "uid", uid, "campaign", d.CampaignID, "delivery", d.ID,
		"kind", string(rep.Kind), "class", string(b.Class), "suppressed", b.Suppress)
	return nil
}

// match finds the report's delivery: by the VERP token when it verifies,
// else by the original Message-ID. store.ErrNotFound when neither does.
func match(ctx context.Context, st store.Store, signer *verp.Signer, rep *bounce.Report) (*store.Delivery, error) {
	if rep.Token != "" {
		if ref, err := signer.Verify(rep.Token); err == nil {
			return &store.Delivery{ID: ref.DeliveryID, CampaignID: ref.CampaignID, Attempts: ref.Attempt}, nil
		}
	}
	if rep.MessageID != "" {
		d, err := st.DeliveryByMessageID(ctx, rep.MessageID)
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, store.ErrNotFound
}

// pick is the recipient a failure is recorded with: the first hard one,
// else the first.
func pick(rs []bounce.Recipient) bounce.Recipient {
	for _, r := range rs {
		if r.Hard {
			return r
		}
	}
	if len(rs) == 0 {
		return bounce.Recipient{Result: outcome.ClassifyBounce(0, "5.0.0", "")}
	}
	return rs[0]
}

func headerOf(data []byte) (subject, sender string) {
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return "", ""
	}
	dec := new(mime.WordDecoder)
	subject = m.Header.Get("Subject")
	if s, err := dec.DecodeHeader(subject); err == nil {
		subject = s
	}
	return smtpclient.CleanText(clip(subject)), smtpclient.CleanText(clip(m.Header.Get("From")))
}

func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
