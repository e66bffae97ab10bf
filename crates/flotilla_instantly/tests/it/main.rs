//! Integration tests: the client against the simulator over real sockets, and against
//! wiremock only for response shapes the simulator cannot produce.

mod common;
mod hygiene;
mod sim_endpoints;
mod sim_errors;
mod sim_pacing;
mod sim_pagination;
mod wire;
