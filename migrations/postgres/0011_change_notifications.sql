-- Every instance keeps verified tokens and workspace listings in memory (PostgreSQL).
--
-- The outbox row of a change that can make such an entry stale notifies every listening
-- instance at the commit that writes it, whoever writes it (an instance, the CLI, a script
-- that goes through the product). The payload is the event's JSON; one too long for a
-- notification is sent as '{}', which a listener reads as "forget everything".
CREATE FUNCTION loopstack_secrets_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('loopstack_secrets_changes',
        CASE WHEN octet_length(NEW.payload) <= 7000 THEN NEW.payload ELSE '{}' END);
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify_change AFTER INSERT ON outbox FOR EACH ROW
    WHEN (NEW.type IN ('secret.upserted', 'secret.deleted', 'token.revoked'))
    EXECUTE FUNCTION loopstack_secrets_notify_change();
