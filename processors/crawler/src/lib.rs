//! Web crawler (issue 7). In progress: this crate holds so far only the pure building blocks,
//! with no I/O (no Kafka, HTTP, Redis or store), each unit-tested on its own.
//!
//! # Layout
//! - [`normalize`]: one canonical spelling per URL ([`normalize::normalize`]), the
//!   politeness and partition key of a URL ([`normalize::host_key`]), and the crawl scope
//!   ([`normalize::Scope`]: depth, allowed domains, length, crawler-trap guard).
//! - [`robots`]: robots.txt per RFC 9309 — tolerant parsing, group choice for our product
//!   token, longest-match rules with `*` and `$`, `crawl-delay`, sitemaps, and what a fetch's
//!   status code means ([`robots::robots_for_status`]).
//! - [`bloom`]: the Bloom filter behind "seen this URL already?", with a hash that is stable
//!   across builds so a stored filter stays valid.
//! - [`politeness`]: how long to wait before the next request to a host, backoff after 429 and
//!   503, and `Retry-After` parsing.
//!
//! Not written yet: the processor (consuming `crawl.discovered`, keyed by host key, producing
//! `crawl.fetched` and newly discovered links), the fetcher (HTTP, robots.txt cache, refusal of
//! private and loopback addresses), and the frontier (priorities and per-host queues). Their
//! topics, state, idempotency key and failure behaviour will be described here when they are.

#![warn(missing_docs)]

pub mod bloom;
pub mod normalize;
mod percent;
pub mod politeness;
pub mod robots;
