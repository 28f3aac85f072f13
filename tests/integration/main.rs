//! Integration tests against the real broker, Redis and store that `make services-up` starts.
//! One test binary; each module is one capability.

mod chat;
mod crawler;
mod delivery;
mod dlq;
mod harness;
mod ingress;
mod notify;
mod ratelimit;
mod rebalance;
mod replay;
mod retries;
mod timeline;
mod topics;
mod urls;
