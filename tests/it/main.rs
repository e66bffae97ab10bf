//! End-to-end tests of the service: the REST API, the engine and the simulator over real
//! sockets, on SQLite and Postgres. One test binary (matklad, "Delete Cargo Integration Tests").

mod support;

mod crash;
mod input;
mod operations;
mod workspaces;
mod cli;
mod deploy;
mod shutdown;
