//! Avro values in the Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then
//! the Avro binary body. Subjects follow the TopicNameStrategy (`<topic>-value`).
//!
//! Encoding registers the writer's schema under the subject on first use (what Confluent's
//! serializers do by default) and caches the id; decoding fetches the writer's schema by id and
//! caches it. Both go through `schema_registry_converter`, so any Confluent-compatible registry
//! works: `sixfold registry` locally, Confluent Schema Registry or Karapace in production.

use std::time::Duration;

use apache_avro::Schema;
use apache_avro::types::Value;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde::Serialize;

/// How long one registry request may take.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CodecError {
    /// What went wrong, in words fit for a DLQ header.
    pub message: String,
    /// True when trying again later may succeed (registry unreachable); false for bad bytes,
    /// unknown schema ids and values that do not match their schema.
    pub retriable: bool,
}

impl CodecError {
    fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retriable: false,
        }
    }
}

impl From<SRCError> for CodecError {
    fn from(error: SRCError) -> Self {
        let message = match &error.cause {
            Some(cause) => format!("{}: {cause}", error.error),
            None => error.error.clone(),
        };
        Self {
            message,
            retriable: error.retriable,
        }
    }
}

/// An event's Avro schema as the producer knows it (usually `include_str!` of a file in
/// `schemas/avro/`), parsed once.
#[derive(Debug, Clone)]
pub struct EventSchema {
    parsed: Schema,
    supplied: SuppliedSchema,
}

impl EventSchema {
    /// Parses an `.avsc` document.
    pub fn parse(json: &str) -> Result<Self, CodecError> {
        let parsed = Schema::parse_str(json)
            .map_err(|e| CodecError::permanent(format!("invalid Avro schema: {e}")))?;
        let name = match &parsed {
            Schema::Record(record) => Some(record.name.fullname(None)),
            _ => None,
        };
        // The serde form keeps logical types and docs, which the canonical form strips.
        let text = serde_json::to_string(&parsed)
            .map_err(|e| CodecError::permanent(format!("cannot serialize Avro schema: {e}")))?;
        let supplied = SuppliedSchema::new(name, SchemaType::Avro, text);
        Ok(Self { parsed, supplied })
    }

    /// The parsed schema.
    pub fn schema(&self) -> &Schema {
        &self.parsed
    }
}

/// Encoder and decoder sharing one registry client and its caches.
pub struct AvroCodec {
    encoder: AvroEncoder,
    decoder: AvroDecoder,
}

impl AvroCodec {
    /// A codec talking to the registry at `registry_url`.
    pub fn new(registry_url: &str) -> Result<Self, CodecError> {
        let settings = || {
            SrSettings::new_builder(registry_url.to_string())
                .set_timeout(REGISTRY_TIMEOUT)
                .no_proxy()
                .build()
                .map_err(CodecError::from)
        };
        Ok(Self {
            encoder: AvroEncoder::new(settings()?),
            decoder: AvroDecoder::new(settings()?),
        })
    }

    /// Encodes a serde value as the value of a record for `topic`, registering `schema` under
    /// `<topic>-value` if it is not yet there.
    pub async fn encode<T: Serialize>(
        &self,
        topic: &str,
        schema: &EventSchema,
        item: &T,
    ) -> Result<Vec<u8>, CodecError> {
        let value = apache_avro::to_value(item)
            .and_then(|value| value.resolve(&schema.parsed))
            .map_err(|e| CodecError::permanent(format!("value does not fit its schema: {e}")))?;
        self.encode_value(topic, schema, value).await
    }

    /// Encodes an Avro value (already shaped like `schema`) for `topic`.
    pub async fn encode_value(
        &self,
        topic: &str,
        schema: &EventSchema,
        value: Value,
    ) -> Result<Vec<u8>, CodecError> {
        let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
            topic.to_string(),
            false,
            schema.supplied.clone(),
        );
        let result = self.encoder.encode_value(value, &strategy).await;
        if result.is_err() {
            // The converter caches failures; a registry that was down must be asked again.
            self.encoder.remove_errors_from_cache();
        }
        Ok(result?)
    }

    /// A record value as JSON for people to read (operator tools, the console): decoded, or
    /// `{"undecodable": "<why>"}`.
    pub async fn decode_json(&self, payload: Option<&[u8]>) -> serde_json::Value {
        match self.decode(payload).await {
            Ok(value) => serde_json::Value::try_from(value)
                .unwrap_or_else(|e| serde_json::json!({"undecodable": e.to_string()})),
            Err(error) => serde_json::json!({"undecodable": error.to_string()}),
        }
    }

    /// Decodes a record value written in the Confluent wire format. A missing payload (a
    /// tombstone) decodes to `Value::Null`.
    pub async fn decode(&self, payload: Option<&[u8]>) -> Result<Value, CodecError> {
        if let Some(bytes) = payload {
            check_framing(bytes)?;
        }
        match self.decoder.decode(payload).await {
            Ok(result) => Ok(result.value),
            Err(error) => {
                // The converter caches failures, unknown schema ids included; a registry
                // replica that lagged may know the id a moment later, so never keep them.
                self.decoder.remove_errors_from_cache();
                Err(error.into())
            }
        }
    }
}

/// Rejects bytes that cannot be Confluent-framed, with a message naming what is wrong.
fn check_framing(bytes: &[u8]) -> Result<(), CodecError> {
    match bytes {
        [] => Err(CodecError::permanent("empty payload")),
        [magic, ..] if *magic != 0 => Err(CodecError::permanent(format!(
            "bad magic byte {magic:#04x}: not in the Confluent wire format"
        ))),
        [_, rest @ ..] if rest.len() < 4 => Err(CodecError::permanent(
            "payload shorter than the 5-byte Confluent header",
        )),
        _ => Ok(()),
    }
}

/// The schema id of a Confluent-framed payload, if it is framed.
pub fn schema_id(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [0, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_errors_name_the_problem() {
        assert!(check_framing(b"").unwrap_err().message.contains("empty"));
        let bad = check_framing(b"garbage").unwrap_err();
        assert!(bad.message.contains("magic byte 0x67"), "{}", bad.message);
        assert!(!bad.retriable);
        assert!(
            check_framing(&[0, 0, 1])
                .unwrap_err()
                .message
                .contains("shorter")
        );
        assert!(check_framing(&[0, 0, 0, 0, 7, 2]).is_ok());
    }

    #[test]
    fn reads_schema_id() {
        assert_eq!(schema_id(&[0, 0, 0, 1, 2, 9]), Some(258));
        assert_eq!(schema_id(&[1, 0, 0, 0, 1]), None);
    }

    #[test]
    fn parses_record_schema_with_full_name() {
        let schema = EventSchema::parse(
            r#"{"type":"record","name":"Ping","namespace":"sixfold.test","fields":[{"name":"n","type":"long"}]}"#,
        )
        .unwrap();
        assert_eq!(schema.supplied.name.as_deref(), Some("sixfold.test.Ping"));
        assert!(EventSchema::parse("{").is_err());
    }
}
