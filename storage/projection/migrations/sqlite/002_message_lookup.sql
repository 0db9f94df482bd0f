-- The chat platform knows an instance and a message id, not our media id: GET /media?
-- instance_id=&message_id= and /instances/{i}/messages/{m}/media read this index, which
-- also gives their newest-first order.
CREATE INDEX media_message ON media (instance_id, message_id, created_at, media_id);
