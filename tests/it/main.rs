//! End-to-end tests of the service: the REST API, the engine and the simulator over real
//! sockets, on SQLite and Postgres. One test binary (matklad, "Delete Cargo Integration Tests").

mod support;

mod audit;
mod authz;
mod cli;
mod crash;
mod deploy;
mod input;
mod kinds;
mod leaks;
mod onboarding;
mod operations;
mod replicas;
mod reports;
mod shutdown;
mod soak;
mod workspaces;
