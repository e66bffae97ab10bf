-- Operators and the audit trail (SQLite): indexes for the audit filters, and append-only rows.
-- Keep in step with migrations/postgres/0003_operators_audit.sql.

create index audit_event_by_operator on audit_event (operator_id, at, id);
create index audit_event_by_action on audit_event (action, at, id);

-- The audit trail is append-only: no statement may change or remove a row.
create trigger audit_event_no_update before update on audit_event
begin
    select raise(abort, 'audit_event is append-only');
end;
create trigger audit_event_no_delete before delete on audit_event
begin
    select raise(abort, 'audit_event is append-only');
end;
