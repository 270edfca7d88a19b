-- A secret's upsert in one round trip (PostgreSQL): one statement, so one transaction, does
-- what the server otherwise does in about ten (src/server/store/one_trip.rs calls it).
--
-- The server seals the value before it knows the row, for the id and version it expects
-- (p_id, p_version: the next version of the row it last saw, or a new id at version 1), under
-- the data key version it holds (p_key_version). Nothing is written unless all of that is
-- still so; otherwise the answer says what is there, and the server seals again:
--   'written'   the row, as the list route shows it
--   'reseal'    o_id, o_version: the row there now (no o_id: none)
--   'data_key'  another data key version is active (a rotation)
--   'mismatch'  o_version: a check-and-set named another version
--   'required'  the workspace requires check-and-set and none was named
--   'not_found' the workspace has no data key (it does not exist)
--
-- As on every write: the data key is shared while sealing (a rotation waits), the secret's row
-- is locked, the previous value is kept as a version (older ones beyond p_keep pruned), the
-- outbox gets the event, and the audit entry is appended to the workspace's chain. Its hash is
-- SHA-256 over the canonical encoding the server computes (src/server/domain/audit.rs): the
-- bytes before the entry's place (p_audit_head), the place, the bytes after it
-- (p_audit_tail), then the previous hash as a field.
CREATE FUNCTION lss_upsert_secret(
    p_workspace uuid, p_key text, p_id uuid, p_version bigint, p_key_version integer,
    p_ciphertext bytea, p_nonce bytea, p_aad_version integer, p_has_value boolean,
    p_actor text, p_now timestamptz, p_expected bigint, p_keep bigint,
    p_audit_id uuid, p_audit_action text, p_audit_at timestamptz, p_audit_head bytea, p_audit_tail bytea,
    p_genesis bytea, p_event_id uuid, p_event_type text, p_event_payload text,
    OUT o_outcome text, OUT o_id uuid, OUT o_version bigint, OUT o_has_value boolean, OUT o_updated_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    v_key_version integer;
    v_required boolean;
    v_id uuid;
    v_version bigint;
    v_seq bigint;
    v_prev bytea;
    v_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('data key ' || p_workspace::text, 0));
    SELECT k.version, w.require_check_and_set INTO v_key_version, v_required
      FROM workspace_keys k JOIN workspaces w ON w.id = k.workspace_id
     WHERE k.workspace_id = p_workspace ORDER BY k.version DESC LIMIT 1;
    IF NOT FOUND THEN
        o_outcome := 'not_found';
        RETURN;
    END IF;
    IF v_key_version <> p_key_version THEN
        o_outcome := 'data_key';
        RETURN;
    END IF;

    LOOP
        SELECT s.id, s.version INTO v_id, v_version FROM secrets s
         WHERE s.workspace_id = p_workspace AND s.key = p_key FOR UPDATE;
        IF NOT FOUND THEN
            v_id := NULL;
            v_version := 0;
        END IF;
        IF p_expected IS NOT NULL AND p_expected <> v_version THEN
            o_outcome := 'mismatch';
            o_version := v_version;
            RETURN;
        END IF;
        IF p_expected IS NULL AND v_required THEN
            o_outcome := 'required';
            RETURN;
        END IF;
        IF (v_id IS NULL AND p_version <> 1)
           OR (v_id IS NOT NULL AND (v_id <> p_id OR v_version + 1 <> p_version)) THEN
            o_outcome := 'reseal';
            o_id := v_id;
            o_version := v_version;
            RETURN;
        END IF;
        IF v_id IS NOT NULL THEN
            UPDATE secrets SET ciphertext = p_ciphertext, nonce = p_nonce, key_version = p_key_version,
                   has_value = p_has_value, aad_version = p_aad_version, version = p_version,
                   updated_at = p_now, updated_by = p_actor
             WHERE id = v_id
            RETURNING id, version, has_value, updated_at INTO o_id, o_version, o_has_value, o_updated_at;
            EXIT;
        END IF;
        INSERT INTO secrets (id, workspace_id, key, ciphertext, nonce, key_version, has_value,
                             created_at, created_by, updated_at, updated_by, aad_version)
        VALUES (p_id, p_workspace, p_key, p_ciphertext, p_nonce, p_key_version, p_has_value,
                p_now, p_actor, p_now, p_actor, p_aad_version)
        ON CONFLICT (workspace_id, key) DO NOTHING
        RETURNING id, version, has_value, updated_at INTO o_id, o_version, o_has_value, o_updated_at;
        EXIT WHEN FOUND;
        -- Another writer stored the key first: look again.
    END LOOP;

    INSERT INTO secret_versions (secret_id, version, workspace_id, key, ciphertext, nonce, key_version,
                                 aad_version, has_value, created_at, created_by)
    SELECT id, version, workspace_id, key, ciphertext, nonce, key_version, aad_version, has_value,
           updated_at, updated_by
      FROM secrets WHERE workspace_id = p_workspace AND id = o_id;
    IF o_version > p_keep THEN
        DELETE FROM secret_versions WHERE secret_id = o_id AND version <= o_version - p_keep;
    END IF;

    INSERT INTO outbox (id, workspace_id, type, payload, occurred_at)
    VALUES (p_event_id, p_workspace, p_event_type, p_event_payload, p_now);

    INSERT INTO audit_heads (chain, seq, hash) VALUES (p_workspace, 1, p_genesis)
    ON CONFLICT (chain) DO UPDATE SET seq = audit_heads.seq + 1
    RETURNING seq, hash INTO v_seq, v_prev;
    v_hash := sha256(p_audit_head || int8send(v_seq) || p_audit_tail
                     || '\x01'::bytea || int4send(octet_length(v_prev)) || v_prev);
    INSERT INTO audit_events (id, workspace_id, actor, action, key, detail, at, run_id, seq, prev_hash, hash)
    VALUES (p_audit_id, p_workspace, p_actor, p_audit_action, p_key, NULL, p_audit_at, NULL, v_seq, v_prev, v_hash);
    UPDATE audit_heads SET hash = v_hash WHERE chain = p_workspace;

    o_outcome := 'written';
END
$$;
