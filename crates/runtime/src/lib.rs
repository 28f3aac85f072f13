//! The Sixfold runtime: everything processors have in common, so that no processor writes it
//! again.
//!
//! # Layout
//! - [`settings`]: typed settings from defaults, a YAML file and `SIXFOLD__…` variables.
//! - [`telemetry`]: `tracing` set-up (pretty in a terminal, JSON in production).
//! - [`metrics`]: one Prometheus registry per process, the standard processor counters, and the
//!   `/metrics` + `/healthz` server.
//! - [`shutdown`]: one cancellation token, cancelled by SIGTERM or Ctrl-C.
//! - [`codec`]: Avro in the Confluent wire format through a schema registry.
//! - [`producer`]: an idempotent producer whose sends complete on the broker's acknowledgement.
//! - [`redis_conn`]: one Redis connection type for a single node or a Redis Cluster.
//! - [`topics`]: the topic catalog read from `topics.yaml`, and `topics apply`.
//! - [`processor`]: the trait a processor implements and the record it receives.
//! - [`failure`]: retry tiers and dead-lettering (Uber's reprocessing pattern).
//! - [`consumer`]: the consumer loop that drives a processor.
//!
//! # Delivery guarantee
//! At least once, with idempotent effects expected from processors. The consumer runs with
//! `enable.auto.offset.store=false`: an offset is stored only after the processor finished every
//! effect of the record, or after the record was handed (and acknowledged) to a retry topic or
//! the dead-letter topic. Stored offsets are committed every few seconds, on partition revoke and
//! on shutdown. A crash therefore re-delivers at most the records since the last commit.
//! Records of one partition are processed one after another, in offset order.

pub mod applied;
pub mod codec;
pub mod consumer;
pub mod failure;
pub mod metrics;
pub mod processor;
pub mod producer;
pub mod redis_conn;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod topics;

pub use consumer::{ProcessorConfig, run_processor};
pub use processor::{Classify, Processor, Record};
