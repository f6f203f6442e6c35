-- pending_set_message: keep the confirmation message (sandbox route).
UPDATE pending_subscriptions SET message = :message WHERE id = :id
