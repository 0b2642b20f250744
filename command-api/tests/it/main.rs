//! Integration tests of command-api against real PostgreSQL and Kafka (started by
//! `compose/test.sh`). One binary with modules, so the suite links once.

mod anonymous_waits;
mod bad_input;
mod card_tokens;
mod catalog;
mod commerce;
mod consistency;
mod contention;
mod contract;
mod contracts_kafka;
mod fuzz;
mod http_flow;
mod invoices;
mod loadgen;
mod purchase;
mod purchase_load;
mod realtime;
mod relay_loss;
mod replay;
mod security;
mod sessions;
mod store;
mod support;
mod transfer;
mod waiting_room;
mod waitlist;
mod web;
