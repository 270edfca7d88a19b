-- PostgreSQL notifies other instances of a run's move (its migration 0012). A SQLite server
-- reads every event from the outbox already; nothing to do here.
SELECT 1;
