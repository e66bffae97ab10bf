//! End-to-end tests of the service: the REST API, the engine and the simulator over real
//! sockets, on SQLite and Postgres. One test binary (matklad, "Delete Cargo Integration Tests").

mod support;

mod cli;
mod crash;
mod deploy;
mod input;
mod operations;
mod shutdown;
mod workspaces;
