//! Integration tests of the consumer runtime through the real `projections` binary, on real
//! PostgreSQL and Kafka: poison messages, SIGKILL mid-batch, SIGTERM drain.

mod consumer_runtime;
