-- flotilla_vault: encrypted per-workspace Instantly credentials (envelope encryption).
-- Shared SQL convention: TEXT, BIGINT (unix ms), BOOLEAN, BLOB (sqlite) / BYTEA (postgres).
-- The two backend files differ only in BLOB vs BYTEA.

-- One row per credential. `workspace_id` is Flotilla's workspace id (uuid text); the service's
-- workspace table lives in a later migration, so there is no foreign key to it.
create table vault_credential (
    id text primary key,
    workspace_id text not null,
    instantly_workspace_id text not null,
    -- access: the key Flotilla itself uses for the workspace (exactly one per workspace)
    -- issued: keys Flotilla created for others via api_keys.create (never used as access key)
    purpose text not null check (purpose in ('access', 'issued')),
    -- direct: own key stored here; delegated: acts through admin_workspace_id's access key
    mode text not null check (mode in ('direct', 'delegated')),
    admin_workspace_id text,
    instantly_key_id text,
    -- "sha256:" + 16 hex chars; null for delegated rows (they hold no key)
    fingerprint text,
    -- version byte || nonce || AES-256-GCM(data key, credential), AAD = credential + workspace ids
    ciphertext bytea,
    -- version byte || nonce || AES-256-GCM(KEK, data key), AAD = credential + workspace + KEK ids
    wrapped_key bytea,
    kek_id text,
    created_at bigint not null,
    updated_at bigint not null,
    last_verified_at bigint,
    check ((mode = 'direct') = (ciphertext is not null and wrapped_key is not null and kek_id is not null and fingerprint is not null)),
    check ((mode = 'delegated') = (admin_workspace_id is not null)),
    check (purpose = 'access' or mode = 'direct'),
    check (purpose = 'access' or instantly_key_id is not null)
);

create unique index vault_credential_access_uq on vault_credential (workspace_id) where purpose = 'access';
create unique index vault_credential_fingerprint_uq on vault_credential (fingerprint) where fingerprint is not null;
create index vault_credential_workspace_idx on vault_credential (workspace_id);
create index vault_credential_admin_idx on vault_credential (admin_workspace_id);
create index vault_credential_kek_idx on vault_credential (kek_id);

-- One check value per KEK id ever configured: AES-256-GCM(KEK, constant), so that a KEK id
-- configured with the wrong key bytes is refused at open instead of at first decrypt.
create table vault_kek (
    id text primary key,
    check_value bytea not null,
    created_at bigint not null
);
