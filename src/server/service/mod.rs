//! The services: every rule of the product lives here, and every write that spans rows runs in
//! one transaction with its audit row. Web handlers, server functions and the CLI call these;
//! services call the store and the keys, and know nothing about HTTP or who may call them
//! (authorization is the web layer's).

pub mod access;
pub mod audit;
pub mod events;
pub mod http_request;
pub mod open;
pub mod outbound;
pub mod rotation;
pub mod secrets;
pub mod sessions;
pub mod tools;
pub mod usage;
pub mod waiting;
pub mod webhooks;
pub mod workflow;
