//! The back end (compiled with `ssr` only), in layers. Each layer uses only the layers below
//! it; nothing imports upward:
//!
//! - `cli`: the command line; builds the state and calls services.
//! - `web`: HTTP: the serve loop, the principal extractor, CSRF, REST handlers, the Studio's
//!   server-function adapters, and `AppState`, which assembles everything for them.
//! - `service`: every rule of the product (secrets, access, sessions, tools, workflows, events,
//!   key rotation). Services know nothing about HTTP.
//! - `store`: SQL only, one file per table group, no rules; the database handle.
//! - `keys`: envelope encryption, the master key file, password hashing and credential
//!   primitives.
//! - `domain`: the types input is parsed into once (`SecretKey`, `SecretValue`, `Scope`,
//!   `Actor`, ...), usable by every layer.
//!
//! `config` and `error` sit beside `domain` at the bottom.

pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod keys;
pub mod logging;
pub mod service;
pub mod store;
pub mod web;

pub use service::secrets::SecretService;
pub use web::state;
pub use web::{api_router, app_router};
