#![doc = include_str!("../README.md")]

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod cli;
pub mod config;
pub mod demo;
pub mod engine;
pub mod error;
pub mod inventory;
pub mod schedule;
pub mod scope;
pub mod store;
