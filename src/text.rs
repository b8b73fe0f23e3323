//! Text that clients may send as a JSON string or as a number: seat numbers and
//! user ids (the old service's clients send both). It sits below the booking and
//! hall modules, which both read it.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};

/// A string that may arrive as a JSON string or integer (`"7"` or `7`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(TextVisitor)
    }
}

// Schemas for the OpenAPI document: text whose rules a `#[schema(...)]` attribute
// cannot state, because the parser trims it before counting, or because it may
// come as a string or an integer. Each says exactly what the parser accepts,
// since clients (and the contract test) generate requests from them.

/// The characters `str::trim` removes (Unicode White_Space), as a regex class body.
const SPACE: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Text that, trimmed, is 1 to `max` characters, none of them NUL.
pub fn trimmed(max: usize, nullable: bool) -> ObjectBuilder {
    let pattern = format!(
        "^[{SPACE}]*[^\\x00{SPACE}](?:[^\\x00]{{0,{}}}[^\\x00{SPACE}])?[{SPACE}]*$",
        max - 2
    );
    let types = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(types)
        .pattern(Some(pattern))
}

/// A string, or an integer standing for its decimal digits (`"7"` or `7`): what
/// `Text` reads, any integer JSON can carry in 64 bits.
pub fn text_or_integer(max: usize, nullable: bool) -> ObjectBuilder {
    let mut types = vec![Type::String, Type::Integer];
    if nullable {
        types.push(Type::Null);
    }
    trimmed(max, false)
        .schema_type(SchemaType::from_iter(types))
        .minimum(Some(i64::MIN as isize))
        .maximum(Some(u64::MAX as usize))
}
