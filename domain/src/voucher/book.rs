//! `VoucherBook`: the voucher codes of one show (stream id: the show id), which keeps codes
//! unique per show case-insensitively and lets the owner list them. Appended in the same unit
//! as the voucher it names.

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub enum VoucherBookCommand {
    Add { voucher_id: Uuid, code: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum VoucherBookEvent {
    VoucherCodeAdded { voucher_id: Uuid, code: String },
}

impl DomainEvent for VoucherBookEvent {
    fn event_type(&self) -> String {
        "VoucherCodeAdded".to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoucherBookError {
    #[error("the code {0:?} is already used for this event")]
    CodeTaken(String),
}

/// Codes are compared in lower case; the voucher keeps the spelling it was created with.
pub fn code_key(code: &str) -> String {
    code.to_ascii_lowercase()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VoucherBook {
    /// Lower-cased code → voucher, in code order.
    pub codes: BTreeMap<String, Uuid>,
}

impl VoucherBook {
    pub fn voucher_for(&self, code: &str) -> Option<Uuid> {
        self.codes.get(&code_key(code)).copied()
    }
}

impl Aggregate for VoucherBook {
    const TYPE: &'static str = "voucher_book";
    type Command = VoucherBookCommand;
    type Event = VoucherBookEvent;
    type Error = VoucherBookError;
    type Services = ();

    async fn handle(
        &mut self,
        command: VoucherBookCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), VoucherBookError> {
        let VoucherBookCommand::Add { voucher_id, code } = command;
        if self.codes.contains_key(&code_key(&code)) {
            return Err(VoucherBookError::CodeTaken(code));
        }
        sink.write(
            VoucherBookEvent::VoucherCodeAdded { voucher_id, code },
            self,
        )
        .await;
        Ok(())
    }

    fn apply(&mut self, event: VoucherBookEvent) {
        let VoucherBookEvent::VoucherCodeAdded { voucher_id, code } = event;
        self.codes.insert(code_key(&code), voucher_id);
    }
}
