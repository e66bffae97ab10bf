-- The claim reads pending targets in (next_attempt_at, operation_id, seq) order and stops at its
-- batch size: with the whole order in the index it no longer reads and sorts every due target
-- of every operation on each claim (quadratic in the size of a large operation).
drop index target_claimable;
create index target_claimable on target (state, next_attempt_at, operation_id, seq);

-- The engine's sweep for operations whose every target has ended but whose status was never
-- written (a finalization lost to a database error) reads the open operations only.
create index operation_by_status on operation (status);
