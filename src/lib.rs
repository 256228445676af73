//! specbot: a GitHub App that turns labelled issues into reviewed specifications, and
//! specifications into pull requests.
//!
//! The life of a delivery: [`server`] verifies and stores it → [`trigger`] turns it into at most
//! one job per intent → a [`runtime`] worker leases it from [`jobs`] → its [`workflow`] runs
//! step by step, each step checkpointed → [`github`] writes, serially and idempotently → the job
//! ends succeeded, failed (one clear comment) or cancelled.

pub mod agent;
pub mod app;
pub mod check;
pub mod check_spec;
pub mod cli;
pub mod command;
pub mod config;
pub mod event;
pub mod github;
pub mod jobs;
pub mod llm;
pub mod local;
pub mod messages;
pub mod prompt;
pub mod runtime;
pub mod sandbox;
pub mod server;
pub mod spec;
pub mod telemetry;
pub mod trigger;
pub mod workflow;
