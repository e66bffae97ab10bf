-- Flotilla service tables (SQLite). Timestamps are unix milliseconds (BIGINT); ids are UUID text.
-- Flags are BIGINT 0/1: sqlx's Any driver cannot decode SQLite BOOLEAN columns.
-- Keep in step with migrations/postgres/0002_service.sql: same tables, same columns.

create table workspace (
    id text primary key,
    name text not null,
    instantly_workspace_id text not null,
    mode text not null,
    admin_workspace_id text null references workspace (id),
    created_at bigint not null,
    updated_at bigint not null
);
create unique index workspace_instantly_id on workspace (instantly_workspace_id);

create table workspace_label (
    workspace_id text not null references workspace (id) on delete cascade,
    label text not null,
    primary key (workspace_id, label)
);
create index workspace_label_by_label on workspace_label (label, workspace_id);

create table operator (
    id text primary key,
    name text not null,
    role text not null,
    labels text not null,
    token_hash text not null,
    bootstrap bigint not null,
    created_at bigint not null,
    revoked_at bigint null
);
create unique index operator_token_hash on operator (token_hash);

create table operation (
    id text primary key,
    kind text not null,
    params text not null,
    targets text not null,
    dry_run bigint not null,
    max_concurrency bigint null,
    failure_tolerance text null,
    status text not null,
    stop_reason text null,
    total bigint not null,
    idempotency_key text null,
    request_hash text null,
    retry_of text null,
    created_by text null,
    created_at bigint not null,
    started_at bigint null,
    finished_at bigint null
);
create unique index operation_idempotency on operation (idempotency_key);
create index operation_by_created on operation (created_at, id);

create table target (
    operation_id text not null references operation (id) on delete cascade,
    workspace_id text not null,
    seq bigint not null,
    state text not null,
    attempts bigint not null,
    next_attempt_at bigint not null,
    lease_owner text null,
    lease_expires_at bigint null,
    code text null,
    message text null,
    changes text null,
    checkpoint text null,
    started_at bigint null,
    finished_at bigint null,
    updated_at bigint not null,
    primary key (operation_id, workspace_id)
);
create index target_claimable on target (state, next_attempt_at);
create index target_by_operation_state on target (operation_id, state, seq);
create index target_by_workspace on target (workspace_id, state);

-- One row per workspace that a target is touching right now: the per-workspace lane.
create table workspace_lane (
    workspace_id text primary key,
    operation_id text not null,
    lease_owner text not null,
    lease_expires_at bigint not null
);

create table audit_event (
    id text primary key,
    at bigint not null,
    operator_id text null,
    operator_name text null,
    action text not null,
    outcome text not null,
    status bigint not null,
    operation_id text null,
    workspace_ids text not null,
    detail text null
);
create index audit_event_by_at on audit_event (at, id);
