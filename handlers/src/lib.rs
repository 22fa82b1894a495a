//! The Lambda handlers wsstack deploys behind the WebSocket API and the push queue, as a library:
//! `records` (the DynamoDB record layout), `frames` (the JSON on the wire), `division` (how a
//! fan-out is divided) and `package` (the deterministic zip) are always built and meant for the CLI
//! too, and so is `auth` (tokens, identity, minting; its JWKS fetch excepted); the handlers
//! themselves sit behind the default `runtime` feature.
//!
//! Handlers are plain async functions over typed `aws_lambda_events` events and an [`App`] that holds
//! the SDK clients, so tests call them directly; `src/main.rs` only wires them to `lambda_runtime`.

pub mod auth;
pub mod division;
pub mod frames;
pub mod package;
pub mod records;

#[cfg(feature = "runtime")]
pub mod app;
#[cfg(feature = "runtime")]
pub mod authorizer;
#[cfg(feature = "runtime")]
pub mod chunks;
#[cfg(feature = "runtime")]
pub mod config;
#[cfg(feature = "runtime")]
pub mod error;
#[cfg(feature = "runtime")]
pub mod history;
#[cfg(feature = "runtime")]
pub mod management;
#[cfg(feature = "runtime")]
pub mod pace;
#[cfg(feature = "runtime")]
pub mod push;
#[cfg(feature = "runtime")]
pub mod routes;
#[cfg(feature = "runtime")]
pub mod sdk;
#[cfg(feature = "runtime")]
pub mod store;

#[cfg(feature = "runtime")]
pub use app::App;
#[cfg(feature = "runtime")]
pub use config::{Config, HandlerKind, PushSettings};
