-- PostgreSQL upserts a secret in one statement (its migration 0013). SQLite gathers writes
-- into group commits on one connection instead; nothing to do here.
SELECT 1;
