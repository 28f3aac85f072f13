//! The rate limiter against real Redis: every test runs twice, against the single Redis on
//! 127.0.0.1:6379 (`scripts/services.sh up`; SIXFOLD_TEST_REDIS_URL) and against a 3-node
//! Redis Cluster (`scripts/redis-cluster.sh up`; SIXFOLD_TEST_REDIS_CLUSTER, default
//! 127.0.0.1:7000-7002). A target that is not reachable fails its tests with what to run.
//! Each test uses its own key prefix; clocks are the scripts' test override unless the test
//! is about the real clock.

mod algorithms;
mod concurrency;
mod failures;
mod rules;
mod support;
