package transport

import (
	"context"

	"mailout/internal/outcome"
)

// MessageSink keeps rendered messages (the store does).
type MessageSink interface {
	SaveMessage(ctx context.Context, campaignID, deliveryID int64, messageID string, data []byte) error
}

// Sandbox is the default route: every message is rendered and kept in the
// store, viewable and exportable as .eml; nothing leaves the machine.
type Sandbox struct {
	Sink MessageSink
}

// Deliver keeps the message.
func (s *Sandbox) Deliver(ctx context.Context, m *Message) Result {
	if err := s.Sink.SaveMessage(ctx, m.CampaignID, m.DeliveryID, m.MessageID, m.Data); err != nil {
		return Result{Via: "sandbox", Result: outcome.Result{
			Class: outcome.Temporary, Kind: outcome.KindTemporary, LocalFault: true,
			Text: err.Error(), Reason: "the sandbox could not keep the message (store error)",
		}}
	}
	return Result{Via: "sandbox", Result: outcome.Result{Class: outcome.Delivered, Kind: outcome.KindDone}}
}

// Close does nothing.
func (s *Sandbox) Close() error { return nil }

var _ Transport = (*Sandbox)(nil)
