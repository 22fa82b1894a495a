//! Conformance of `wsstack dev` to API Gateway's WebSocket APIs, end to end through the binary:
//! the scenarios of serverless-offline's WebSocket suites (tests/integration/websocket-oneway,
//! websocket-authorizer, tests/manual/websocket/main/test/e2e/ws.e2e.js), written anew against
//! dev with real WebSocket clients, and checked against the AWS documentation. Where
//! serverless-offline and API Gateway differ, the test follows the documentation and names it; where
//! the documentation is silent, the test says which behaviour it chose and why.
//!
//! Every function of the stack runs one handler (conformance/handler.rs, compiled at test time)
//! that records each event it gets and does what the frame or query string asks.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

#[path = "conformance/support.rs"]
mod support;

#[path = "conformance/events.rs"]
mod events;
#[path = "conformance/frames.rs"]
mod frames;
#[path = "conformance/handshake.rs"]
mod handshake;
#[path = "conformance/management.rs"]
mod management;
#[path = "conformance/routing.rs"]
mod routing;
