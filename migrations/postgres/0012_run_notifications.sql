-- Every instance also keeps runs, as the API shows them, in memory: a run's move notifies the
-- other instances like a secret write does (migration 0011).
DROP TRIGGER outbox_notify_change ON outbox;

CREATE TRIGGER outbox_notify_change AFTER INSERT ON outbox FOR EACH ROW
    WHEN (NEW.type IN ('secret.upserted', 'secret.deleted', 'token.revoked', 'workflow.updated'))
    EXECUTE FUNCTION loopstack_secrets_notify_change();
