-- Where each secret may be sent by `http_request` (PostgreSQL): a JSON array of origins such as
-- "https://api.github.com". Empty: nowhere.
ALTER TABLE secrets ADD COLUMN egress_hosts TEXT NOT NULL DEFAULT '[]';
