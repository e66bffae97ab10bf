-- Operators and the audit trail (Postgres): indexes for the audit filters, and append-only rows.
-- Keep in step with migrations/sqlite/0003_operators_audit.sql.

create index audit_event_by_operator on audit_event (operator_id, at, id);
create index audit_event_by_action on audit_event (action, at, id);

-- The audit trail is append-only: no statement may change or remove a row.
create function audit_event_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_event is append-only';
end;
$$;
create trigger audit_event_no_update before update or delete on audit_event
    for each row execute function audit_event_append_only();
