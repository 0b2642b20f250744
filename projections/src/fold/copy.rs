//! Rows as `COPY … FROM STDIN` text lines, straight from their serde form: the replay
//! writes every rebuilt row this way (one `COPY` per table and chunk instead of one
//! statement per row). Columns are written in field order; how a value is written depends on
//! its column's type, read once from the catalog (`jsonb` as JSON text, arrays as array
//! literals, everything else as its text form).

use std::collections::HashMap;
use std::fmt::Display;
use std::io::Write as _;

use serde::Serialize;
use serde::ser::{self, Impossible, SerializeStruct};
use serde_json::Value;
use sqlx::PgConnection;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("cannot write a row for COPY: {0}")]
    Encode(String),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl ser::Error for CopyError {
    fn custom<T: Display>(msg: T) -> Self {
        CopyError::Encode(msg.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Array,
    Plain,
}

/// Encodes the rows of one table.
#[derive(Debug, Clone)]
pub struct CopyEncoder {
    table: String,
    kinds: HashMap<String, Kind>,
}

impl CopyEncoder {
    /// Reads the column types of `table` (as the connection's search path resolves it).
    pub async fn for_table(conn: &mut PgConnection, table: &str) -> Result<Self, sqlx::Error> {
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT a.attname::text, t.typname::text, t.typcategory::text
               FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
              WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
        )
        .bind(table)
        .fetch_all(conn)
        .await?;
        let kinds = columns
            .into_iter()
            .map(|(name, type_name, category)| {
                let kind = match (type_name.as_str(), category.as_str()) {
                    ("json" | "jsonb", _) => Kind::Json,
                    (_, "A") => Kind::Array,
                    _ => Kind::Plain,
                };
                (name, kind)
            })
            .collect();
        Ok(Self {
            table: table.to_owned(),
            kinds,
        })
    }

    /// `COPY <table> (<columns in field order of R>) FROM STDIN`.
    pub fn statement<R: Serialize>(&self, sample: &R) -> Result<String, CopyError> {
        let mut names = Vec::new();
        sample.serialize(RowSer {
            encoder: self,
            out: &mut Vec::new(),
            names: Some(&mut names),
        })?;
        let columns: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        Ok(format!(
            "COPY {} ({}) FROM STDIN",
            self.table,
            columns.join(", ")
        ))
    }

    /// Appends `row` as one line.
    pub fn encode<R: Serialize>(&self, row: &R, out: &mut Vec<u8>) -> Result<(), CopyError> {
        row.serialize(RowSer {
            encoder: self,
            out,
            names: None,
        })?;
        out.push(b'\n');
        Ok(())
    }

    fn kind(&self, column: &str) -> Result<Kind, CopyError> {
        self.kinds
            .get(column)
            .copied()
            .ok_or_else(|| CopyError::Encode(format!("{} has no column {column:?}", self.table)))
    }
}

/// COPY text escaping of one value.
pub fn escape(s: &str, out: &mut Vec<u8>) {
    if !s
        .bytes()
        .any(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t'))
    {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
}

/// A PostgreSQL array literal of a JSON array of scalars.
fn array_literal(items: &[Value]) -> String {
    let mut literal = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            literal.push(',');
        }
        let text = match item {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        literal.push('"');
        literal.push_str(&text.replace('\\', "\\\\").replace('"', "\\\""));
        literal.push('"');
    }
    literal.push('}');
    literal
}

struct RowSer<'a> {
    encoder: &'a CopyEncoder,
    out: &'a mut Vec<u8>,
    names: Option<&'a mut Vec<&'static str>>,
}

struct Fields<'a> {
    row: RowSer<'a>,
    first: bool,
}

impl SerializeStruct for Fields<'_> {
    type Ok = ();
    type Error = CopyError;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CopyError> {
        if !std::mem::take(&mut self.first) {
            self.row.out.push(b'\t');
        }
        if let Some(names) = self.row.names.as_mut() {
            names.push(key);
        }
        let out = &mut *self.row.out;
        match self.row.encoder.kind(key)? {
            Kind::Plain => value.serialize(Plain { out }),
            Kind::Json => {
                let json = serde_json::to_string(value)?;
                if json == "null" {
                    out.extend_from_slice(b"\\N");
                } else {
                    escape(&json, out);
                }
                Ok(())
            }
            Kind::Array => match serde_json::to_value(value)? {
                Value::Null => {
                    out.extend_from_slice(b"\\N");
                    Ok(())
                }
                Value::Array(items) => {
                    escape(&array_literal(&items), out);
                    Ok(())
                }
                other => Err(CopyError::Encode(format!("{key} is not an array: {other}"))),
            },
        }
    }

    fn end(self) -> Result<(), CopyError> {
        Ok(())
    }
}

fn not_a_row<T>() -> Result<T, CopyError> {
    Err(CopyError::Encode("a row must be a struct".into()))
}

macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ok, CopyError> { not_a_row() })*
    };
}

impl<'a> ser::Serializer for RowSer<'a> {
    type Ok = ();
    type Error = CopyError;
    type SerializeSeq = Impossible<(), CopyError>;
    type SerializeTuple = Impossible<(), CopyError>;
    type SerializeTupleStruct = Impossible<(), CopyError>;
    type SerializeTupleVariant = Impossible<(), CopyError>;
    type SerializeMap = Impossible<(), CopyError>;
    type SerializeStruct = Fields<'a>;
    type SerializeStructVariant = Impossible<(), CopyError>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields<'a>, CopyError> {
        Ok(Fields {
            row: self,
            first: true,
        })
    }

    refuse! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> (); serialize_i16(i16) -> (); serialize_i32(i32) -> (); serialize_i64(i64) -> ();
        serialize_u8(u8) -> (); serialize_u16(u16) -> (); serialize_u32(u32) -> (); serialize_u64(u64) -> ();
        serialize_f32(f32) -> (); serialize_f64(f64) -> ();
        serialize_char(char) -> (); serialize_str(&str) -> (); serialize_bytes(&[u8]) -> ();
        serialize_none() -> (); serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), CopyError> {
        not_a_row()
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), CopyError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), CopyError> {
        not_a_row()
    }
}

/// One scalar column value.
struct Plain<'a> {
    out: &'a mut Vec<u8>,
}

impl Plain<'_> {
    fn number(self, n: impl Display) -> Result<(), CopyError> {
        write!(self.out, "{n}").map_err(|e| CopyError::Encode(e.to_string()))
    }
}

fn not_scalar<T>() -> Result<T, CopyError> {
    Err(CopyError::Encode(
        "a nested value in a column that is neither json nor an array".into(),
    ))
}

impl ser::Serializer for Plain<'_> {
    type Ok = ();
    type Error = CopyError;
    type SerializeSeq = Impossible<(), CopyError>;
    type SerializeTuple = Impossible<(), CopyError>;
    type SerializeTupleStruct = Impossible<(), CopyError>;
    type SerializeTupleVariant = Impossible<(), CopyError>;
    type SerializeMap = Impossible<(), CopyError>;
    type SerializeStruct = Impossible<(), CopyError>;
    type SerializeStructVariant = Impossible<(), CopyError>;

    fn serialize_bool(self, v: bool) -> Result<(), CopyError> {
        self.out.push(if v { b't' } else { b'f' });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), CopyError> {
        self.number(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), CopyError> {
        self.number(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), CopyError> {
        self.number(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), CopyError> {
        self.number(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), CopyError> {
        self.number(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), CopyError> {
        self.number(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), CopyError> {
        self.number(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), CopyError> {
        self.number(v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), CopyError> {
        self.number(v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), CopyError> {
        self.number(v)
    }
    fn serialize_char(self, v: char) -> Result<(), CopyError> {
        escape(v.encode_utf8(&mut [0; 4]), self.out);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), CopyError> {
        escape(v, self.out);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), CopyError> {
        not_scalar()
    }
    fn serialize_none(self) -> Result<(), CopyError> {
        self.out.extend_from_slice(b"\\N");
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), CopyError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), CopyError> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), CopyError> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), CopyError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), CopyError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), CopyError> {
        not_scalar()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, CopyError> {
        not_scalar()
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CopyError> {
        not_scalar()
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, CopyError> {
        not_scalar()
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, CopyError> {
        not_scalar()
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CopyError> {
        not_scalar()
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, CopyError> {
        not_scalar()
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, CopyError> {
        not_scalar()
    }
}
