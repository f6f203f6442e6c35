-- pending_confirm: confirm a pending subscription once.
UPDATE pending_subscriptions SET confirmed_at = :at WHERE id = :id AND confirmed_at = 0
