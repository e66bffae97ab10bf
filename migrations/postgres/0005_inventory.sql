-- Inventory snapshots kept by `inventory.sync` and read by `/v1/reports/*` (Postgres).
-- Keep in step with migrations/sqlite/0005_inventory.sql: same tables, same columns.
-- Timestamps are unix milliseconds (BIGINT); flags are BIGINT 0/1; JSON is TEXT.
-- No foreign key to workspace: reports inner-join `workspace`, so the rows of a removed
-- workspace are simply never shown (and the next snapshot of an id replaces them).

-- One row per workspace that has been synced at least once.
create table inventory_snapshot (
    workspace_id text primary key,
    synced_at bigint not null,
    operation_id text null,
    -- Newest audit entry timestamp seen so far: the next sync asks Instantly from that day on.
    audit_cursor_at bigint null
);

-- Per workspace and resource: `synced` (with its item count) or `unavailable` (with the reason:
-- the workspace's plan or key cannot read it, a 402 or 403).
create table inventory_resource (
    workspace_id text not null,
    resource text not null,
    status text not null,
    item_count bigint not null,
    reason text null,
    synced_at bigint not null,
    primary key (workspace_id, resource)
);

create table inventory_member (
    workspace_id text not null,
    member_id text not null,
    email text not null,
    role text not null,
    accepted bigint not null,
    user_id text null,
    created_at bigint null,
    primary key (workspace_id, member_id)
);
create index inventory_member_by_email on inventory_member (email, workspace_id);
create index inventory_member_by_ws_email on inventory_member (workspace_id, email, member_id);

-- Key metadata only: Instantly never lists secrets (instantly-api.md §13.5), nor do we store one.
create table inventory_api_key (
    workspace_id text not null,
    key_id text not null,
    name text not null,
    scopes text not null,
    created_at bigint null,
    updated_at bigint null,
    -- Risk flags that depend only on the scopes, computed at sync time so reports filter in SQL.
    all_all bigint not null,
    all_scope bigint not null,
    all_update bigint not null,
    writes_api_keys bigint not null,
    writes_members bigint not null,
    primary key (workspace_id, key_id)
);

create table inventory_tag (
    workspace_id text not null,
    tag_id text not null,
    label text not null,
    description text null,
    primary key (workspace_id, tag_id)
);

create table inventory_tag_mapping (
    workspace_id text not null,
    mapping_id text not null,
    tag_id text not null,
    -- instantly-api.md §9: 1 = account (resource_id is the email), 2 = campaign.
    resource_type bigint not null,
    resource_id text not null,
    primary key (workspace_id, mapping_id)
);
create index inventory_tag_mapping_by_resource on inventory_tag_mapping (workspace_id, resource_type, resource_id);

create table inventory_campaign (
    workspace_id text not null,
    campaign_id text not null,
    name text not null,
    status bigint not null,
    primary key (workspace_id, campaign_id)
);

create table inventory_account (
    workspace_id text not null,
    email text not null,
    status bigint not null,
    primary key (workspace_id, email)
);

create table inventory_group_member (
    workspace_id text not null,
    group_member_id text not null,
    admin_workspace_id text not null,
    sub_workspace_id text not null,
    status text not null,
    admin_workspace_name text null,
    sub_workspace_name text null,
    primary key (workspace_id, group_member_id)
);

-- Audit entries accumulate across syncs (fetched incrementally, de-duplicated by id).
create table inventory_audit_log (
    workspace_id text not null,
    log_id text not null,
    at bigint not null,
    activity_type bigint not null,
    user_id text null,
    user_name text null,
    ip_address text null,
    from_api bigint not null,
    campaign_id text null,
    api_key_id text null,
    affected_count bigint null,
    metadata text null,
    synced_at bigint not null,
    primary key (workspace_id, log_id)
);
create index inventory_audit_log_by_at on inventory_audit_log (at, workspace_id, log_id);
