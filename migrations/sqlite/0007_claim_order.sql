-- The claim reads pending targets in (next_attempt_at, operation_id, seq) order and stops at its
-- batch size: with the whole order in the index it no longer reads and sorts every due target
-- of every operation on each claim (quadratic in the size of a large operation).
drop index target_claimable;
create index target_claimable on target (state, next_attempt_at, operation_id, seq);
