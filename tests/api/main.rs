//! End-to-end tests: a real PostgreSQL started by the harness, a real server on a
//! real socket, real HTTP requests.

mod auth;
mod booking;
mod concurrency;
mod connections;
mod docs;
mod fault_proxy;
mod faults;
mod halls;
mod hardening;
mod helpers;
mod holds;
mod idempotency;
mod lifecycle;
mod limits;
mod local_cluster;
mod metrics;
mod onsale;
mod openapi;
mod pages;
mod resume;
mod schema;
mod shares;
mod shows;
mod validation;
mod waiting;
mod ws;
mod ws_client;
mod ws_consistency;
mod ws_storm;
