//! JSON as the generated test data lays it out: objects keep their key order, only ASCII is
//! written (others as `\uXXXX`), and an indent of N spaces or none (`,` and `:` without spaces).
//! This is the layout the committed files were first written in, so regenerating them changes no
//! byte. Also shared by `tests/generated.rs` (through `#[path]`), hence no `crate::` paths.

use std::fmt;
use std::io;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

/// The generators' error: a message (they are tools, the message is all a caller needs).
pub type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// A JSON value whose objects keep their key order (serde_json's `Value` sorts them here).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number as read (integers stay integers).
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, in key order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Json> {
        Ok(serde_json::from_str(text)?)
    }

    /// A float value.
    pub fn float(x: f64) -> Result<Json> {
        serde_json::Number::from_f64(x)
            .map(Json::Number)
            .ok_or_else(|| format!("{x} is not a JSON number").into())
    }

    /// The value under `key` of an object.
    pub fn get(&self, key: &str) -> Result<&Json> {
        match self {
            Json::Object(o) => o.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
        .ok_or_else(|| format!("no key {key:?}").into())
    }

    /// The value under `key` of an object, to change.
    pub fn get_mut(&mut self, key: &str) -> Result<&mut Json> {
        match self {
            Json::Object(o) => o.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
        .ok_or_else(|| format!("no key {key:?}").into())
    }

    /// Sets `key` of an object: in place when present, else appended (like a Python dict).
    pub fn set(&mut self, key: &str, value: Json) -> Result<()> {
        let Json::Object(o) = self else {
            return Err(format!("cannot set {key:?} of a non-object").into());
        };
        match o.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => o.push((key.to_string(), value)),
        }
        Ok(())
    }

    /// The elements of an array.
    pub fn items(&self) -> Result<&[Json]> {
        match self {
            Json::Array(a) => Ok(a),
            _ => Err("not an array".into()),
        }
    }

    /// The elements of an array, to change.
    pub fn items_mut(&mut self) -> Result<&mut Vec<Json>> {
        match self {
            Json::Array(a) => Ok(a),
            _ => Err("not an array".into()),
        }
    }

    /// A string value.
    pub fn str(&self) -> Result<&str> {
        match self {
            Json::String(s) => Ok(s),
            _ => Err("not a string".into()),
        }
    }

    /// A number value as a float.
    pub fn f64(&self) -> Result<f64> {
        match self {
            Json::Number(n) => n.as_f64().ok_or_else(|| "not a float".into()),
            _ => Err("not a number".into()),
        }
    }
}

/// `{"key": value, ...}` in this order.
pub fn object<const N: usize>(fields: [(&str, Json); N]) -> Json {
    Json::Object(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

impl From<&str> for Json {
    fn from(s: &str) -> Json {
        Json::String(s.into())
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(x) => s.serialize_str(x),
            Json::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Json::Object(o) => {
                let mut map = s.serialize_map(Some(o.len()))?;
                for (k, v) in o {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<Json, E> {
                Json::float(x).map_err(E::custom)
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::String(s.into()))
            }
            fn visit_string<E>(self, s: String) -> Result<Json, E> {
                Ok(Json::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Json::Array(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = a.next_entry()? {
                    v.push(kv);
                }
                Ok(Json::Object(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// `value` as JSON text: indented by `indent` spaces, or on one line without spaces; only ASCII.
pub fn to_string<T: Serialize + ?Sized>(value: &T, indent: Option<usize>) -> Result<String> {
    let mut out = Vec::new();
    match indent {
        Some(n) => {
            let spaces = " ".repeat(n);
            let f = Ascii(PrettyFormatter::with_indent(spaces.as_bytes()));
            value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, f))?;
        }
        None => {
            let f = Ascii(CompactFormatter);
            value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, f))?;
        }
    }
    Ok(String::from_utf8(out)?)
}

/// A formatter writing non-ASCII characters as `\uXXXX` escapes (UTF-16, lowercase hex).
struct Ascii<F>(F);

impl<F: Formatter> Formatter for Ascii<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut units = [0u16; 2];
        let mut start = 0;
        for (i, c) in fragment.char_indices().filter(|(_, c)| !c.is_ascii()) {
            w.write_all(&fragment.as_bytes()[start..i])?;
            for u in c.encode_utf16(&mut units) {
                write!(w, "\\u{u:04x}")?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}
