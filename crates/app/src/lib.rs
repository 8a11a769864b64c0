//! The composition root: turns [`Settings`](settings::Settings) into a running service by
//! checking them once ([`Config`]), choosing adapters, wiring them into the
//! domain's use cases and handing those to the HTTP routers. Nothing else
//! in the workspace depends on every crate; nothing here contains business
//! rules.
//!
//! Rooms: [`settings`] (the raw file and environment), [`config`] (the
//! checked configuration), `providers` (SMS, voice and mail), `wiring`
//! ([`build`]) and `check` (`phonegate config check`).

pub mod background;
mod check;
pub mod config;
pub mod exposure;
mod instrumented;
mod jwt_keys;
mod providers;
mod receipts;
mod routes;
mod secrets;
pub mod settings;
pub mod stats;
pub mod telemetry;
mod vendors;
mod whatsapp;
mod wiring;

pub use self::{
    check::{ConfigReport, check_settings},
    config::Config,
    wiring::{App, Overrides, build, build_from, migrate_database, open_database},
};
