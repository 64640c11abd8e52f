//! The HTTP API, black-box: a real server on a socket, on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod auth;
mod conversations;
mod cors;
mod csrf;
mod docs;
mod errors;
mod health;
mod index;
mod model;
mod openapi;
mod pages;
mod realtime;
mod revalidation;
mod security;
mod sessions;
mod streaming;
mod support;
mod web_client;
