-- Every instance keeps verified tokens and workspace listings in memory. On SQLite nothing is
-- added: before serving an entry the server reads the outbox past the last event it applied,
-- which covers the CLI's writes to the same file (see src/server/store/cache.rs).
SELECT 1;
