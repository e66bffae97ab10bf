#![doc = include_str!("../README.md")]

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod config;
pub mod engine;
pub mod error;
pub mod scope;
pub mod store;
