-- Bulk onboarding (POST /v1/workspaces/import). Keep in step with migrations/sqlite/0006_onboarding.sql.

-- One row per uploaded row of an import operation. `workspace_id` is the Flotilla workspace id
-- pre-allocated for the row: the target of the `workspaces.import` operation is keyed by it, and
-- the workspace is created under it once the row's key verifies. Never holds a key: only its
-- fingerprint (for duplicate detection and reporting).
create table import_row (
    operation_id text not null references operation (id) on delete cascade,
    workspace_id text not null,
    line bigint not null,
    name text not null,
    -- JSON array of labels
    labels text not null,
    fingerprint text null,
    primary key (operation_id, workspace_id)
);
create index import_row_by_workspace on import_row (workspace_id);

-- flotilla_vault: keys uploaded by an import, waiting for their row to be processed. Same
-- envelope encryption as vault_credential (AAD binds the row and workspace ids); deleted as soon
-- as the row is registered or fails.
create table vault_staged_secret (
    id text primary key,
    workspace_id text not null,
    fingerprint text not null,
    ciphertext bytea not null,
    wrapped_key bytea not null,
    kek_id text not null,
    created_at bigint not null
);
create unique index vault_staged_secret_workspace on vault_staged_secret (workspace_id);
create index vault_staged_secret_kek on vault_staged_secret (kek_id);
