-- messages_list: kept messages of a campaign, in delivery order.
SELECT m.delivery_id, d.email, m.message_id, m.data
FROM messages AS m
JOIN deliveries AS d ON d.id = m.delivery_id
WHERE m.campaign_id = :campaign
ORDER BY m.delivery_id
