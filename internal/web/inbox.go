package web

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"strings"

	"mailout/internal/campaign"
	"mailout/internal/route"
	"mailout/internal/store"
)

// InboxBodyCSP is the Content-Security-Policy of a kept message's HTML
// body: no script at all, no request anywhere (images only as data:
// URLs, so opening a message never tells a tracker), styles of the
// message itself; only the app may frame it. The page shows it in an
// <iframe sandbox> without allow-scripts or allow-same-origin, so even a
// browser that ignored this policy would run nothing in the app's origin.
const InboxBodyCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"

// keptMessage is a message the sandbox route kept.
type keptMessage struct {
	DeliveryID int64
	Email      string
	MessageID  string
	Subject    string
	data       []byte
}

type inboxCampaignRow struct {
	C         store.Campaign
	Delivered int
}

// inboxList lists the sandbox campaigns, whose messages are kept here.
func (s *server) inboxList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st := s.cfg.Campaigns.Store()
	cs, err := st.Campaigns(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var rows []inboxCampaignRow
	for i := range cs {
		if campaign.RouteOf(&cs[i]) != route.Sandbox {
			continue
		}
		n, err := st.Counts(ctx, cs[i].ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		rows = append(rows, inboxCampaignRow{C: cs[i], Delivered: finished(n)})
	}
	s.render(w, r, http.StatusOK, "inbox", "inbox.title", rows, "")
}

type inboxCampaignView struct {
	C        *store.Campaign
	Messages []keptMessage
	Page     int
	Prev     string
	Next     string
}

// inboxCampaign lists the kept messages of one campaign, a page at a
// time.
func (s *server) inboxCampaign(w http.ResponseWriter, r *http.Request) {
	c, ok := s.campaignOf(w, r)
	if !ok {
		return
	}
	pageNo := 1
	fmt.Sscan(r.URL.Query().Get("page"), &pageNo)
	pageNo = max(pageNo, 1)
	v := &inboxCampaignView{C: c, Page: pageNo}
	skip, more := (pageNo-1)*pageSize, false
	errFull := errors.New("page full")
	err := s.cfg.Campaigns.Store().Messages(r.Context(), c.ID, func(id int64, email, msgID string, data []byte) error {
		if skip > 0 {
			skip--
			return nil
		}
		if len(v.Messages) == pageSize {
			more = true
			return errFull
		}
		v.Messages = append(v.Messages, keptMessage{DeliveryID: id, Email: email, MessageID: msgID, Subject: subjectOf(data)})
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		s.fail(w, r, err)
		return
	}
	if pageNo > 1 {
		v.Prev = fmt.Sprintf("?page=%d", pageNo-1)
	}
	if more {
		v.Next = fmt.Sprintf("?page=%d", pageNo+1)
	}
	s.render(w, r, http.StatusOK, "inbox_campaign", "inbox.title", v, "")
}

// message finds the kept message of the path's {id} and {delivery}.
func (s *server) message(w http.ResponseWriter, r *http.Request) (*store.Campaign, *keptMessage, bool) {
	c, ok := s.campaignOf(w, r)
	if !ok {
		return nil, nil, false
	}
	did, ok := idParam(r, "delivery")
	if !ok {
		s.notFound(w, r)
		return nil, nil, false
	}
	var found *keptMessage
	errFound := errors.New("found")
	err := s.cfg.Campaigns.Store().Messages(r.Context(), c.ID, func(id int64, email, msgID string, data []byte) error {
		if id != did {
			return nil
		}
		found = &keptMessage{DeliveryID: id, Email: email, MessageID: msgID, Subject: subjectOf(data), data: data}
		return errFound
	})
	if err != nil && !errors.Is(err, errFound) {
		s.fail(w, r, err)
		return nil, nil, false
	}
	if found == nil {
		s.notFound(w, r)
		return nil, nil, false
	}
	return c, found, true
}

type inboxMessageView struct {
	C       *store.Campaign
	M       *keptMessage
	Headers []header
	HasHTML bool
	Text    string
}

type header struct{ Name, Value string }

// inboxMessage shows one kept message: its headers, its HTML body in a
// sandboxed frame, or its text.
func (s *server) inboxMessage(w http.ResponseWriter, r *http.Request) {
	c, m, ok := s.message(w, r)
	if !ok {
		return
	}
	v := &inboxMessageView{C: c, M: m}
	msg, err := mail.ReadMessage(bytes.NewReader(m.data))
	if err != nil {
		v.Text = string(m.data)
	} else {
		v.Headers = headersOf(m.data)
		html, text := bodies(msg)
		v.HasHTML, v.Text = html != nil, string(text)
	}
	s.render(w, r, http.StatusOK, "inbox_message", "inbox.message", v, "")
}

// inboxBody serves the HTML part of a kept message under InboxBodyCSP.
func (s *server) inboxBody(w http.ResponseWriter, r *http.Request) {
	_, m, ok := s.message(w, r)
	if !ok {
		return
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.data))
	var html []byte
	if err == nil {
		html, _ = bodies(msg)
	}
	if html == nil {
		s.notFound(w, r)
		return
	}
	writeUntrustedHTML(w, html)
}

// writeUntrustedHTML serves an HTML body someone else wrote (a kept
// message, a preview) under InboxBodyCSP, to be framed by the app only.
func writeUntrustedHTML(w http.ResponseWriter, html []byte) {
	h := w.Header()
	h.Set("Content-Security-Policy", InboxBodyCSP)
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(html)
}

// inboxEML downloads a kept message as it would have been sent.
func (s *server) inboxEML(w http.ResponseWriter, r *http.Request) {
	_, m, ok := s.message(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fmt.Sprintf("%06d.eml", m.DeliveryID)))
	_, _ = w.Write(m.data)
}

var wordDecoder = &mime.WordDecoder{}

func subjectOf(data []byte) string {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return ""
	}
	sub := msg.Header.Get("Subject")
	if d, err := wordDecoder.DecodeHeader(sub); err == nil {
		return d
	}
	return sub
}

// headersOf lists the header fields in their order, unfolded and with
// RFC 2047 encoded words decoded.
func headersOf(data []byte) []header {
	var out []header
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			// RFC 5322 §2.2.3: a folded line continues the field.
			out[len(out)-1].Value += " " + strings.TrimSpace(line)
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		out = append(out, header{Name: name, Value: strings.TrimSpace(value)})
	}
	for i := range out {
		if d, err := wordDecoder.DecodeHeader(out[i].Value); err == nil {
			out[i].Value = d
		}
	}
	return out
}

// bodies finds the first text/html and text/plain parts of the message,
// decoded (RFC 2045 §6 transfer encodings), walking multipart parts
// (RFC 2046 §5.1).
func bodies(msg *mail.Message) (html, text []byte) {
	var walk func(ct, cte string, body io.Reader, depth int)
	walk = func(ct, cte string, body io.Reader, depth int) {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			mt = "text/plain"
		}
		switch {
		case strings.HasPrefix(mt, "multipart/") && depth < 10:
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err != nil {
					return
				}
				walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, depth+1)
			}
		case mt == "text/html" && html == nil:
			html = decoded(cte, body)
		case mt == "text/plain" && text == nil:
			text = decoded(cte, body)
		}
	}
	ct := msg.Header.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	walk(ct, msg.Header.Get("Content-Transfer-Encoding"), msg.Body, 0)
	return html, text
}

func decoded(cte string, r io.Reader) []byte {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &newlineSkipper{r})
	}
	b, _ := io.ReadAll(io.LimitReader(r, 16<<20))
	return b
}

// newlineSkipper drops the line breaks of a base64 body.
type newlineSkipper struct{ r io.Reader }

func (n *newlineSkipper) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	j := 0
	for _, c := range p[:k] {
		if c != '\r' && c != '\n' {
			p[j] = c
			j++
		}
	}
	return j, err
}
