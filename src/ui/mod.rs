//! Leptos components of the Studio, one page or piece per file.

pub mod admin;
pub mod audit;
pub mod csrf;
pub mod globals;
pub mod history;
pub mod layout;
pub mod live;
#[cfg(feature = "ssr")]
pub mod markdown;
pub mod post;
pub mod requests;
#[cfg(feature = "ssr")]
pub mod run_page;
pub mod secrets_table;
pub mod server_fns;
pub mod settings;
pub mod show_once;
pub mod sign_in;
pub mod webhooks;
pub mod workspaces;
