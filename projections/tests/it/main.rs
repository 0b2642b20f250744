//! Integration tests of the projections through the real `projections` binary, on real
//! PostgreSQL and Kafka: the consumer runtime (poison messages, SIGKILL mid-batch, SIGTERM
//! drain), the live and replayed forms of every model, and time travel.

mod consumer_runtime;
mod history;
mod live_and_replay;
