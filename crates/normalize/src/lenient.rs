//! Field types that never fail on a wrongly typed value.
//!
//! Real audit logs put numbers where strings belong, strings where booleans belong, and
//! `null` anywhere. Deserializing a whole event must fail only on broken JSON, never on a
//! type mismatch in one field: these types accept any JSON value and keep what is
//! usable, so one odd field cannot cost the event.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use sonic_rs::LazyValue;

/// A string field. Numbers and booleans are kept as their JSON text; objects, arrays and
/// `null` give `None`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub Option<Cow<'a, str>>);

impl<'a> Text<'a> {
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref().filter(|s| !s.is_empty())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(if v { "true" } else { "false" }))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

/// A boolean field: `true`, `"true"`, `"True"`, `1` and their opposites. Anything else
/// gives `None`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flag(pub Option<bool>);

pub(crate) fn parse_flag(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") || text == "1" {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") || text == "0" {
        Some(false)
    } else {
        None
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Text::deserialize(deserializer)?;
        Ok(Flag(text.0.as_deref().and_then(parse_flag)))
    }
}

/// A nested object parsed as `T`; any other JSON value gives `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Obj<T>(pub Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

impl<T> Obj<T> {
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|v| Obj(Some(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Obj(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Obj(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Obj(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Obj(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Obj(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Obj(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Obj(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Obj(None))
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

/// The first element of an array, or the value itself when a single object stands where
/// an array is expected (XML-derived fields do that). Further elements are skipped. `T`
/// must itself be lenient (`Text`, `Obj<_>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct First<T>(pub Option<T>);

impl<T> Default for First<T> {
    fn default() -> Self {
        First(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = First<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<T>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|v| First(Some(v)))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(First(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(First(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(First(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(First(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(First(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(First(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(First(None))
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

/// Any JSON value kept as its raw text (borrowed from the input). `null` gives `None`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Raw<'a>(pub Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Option::<LazyValue<'a>>::deserialize(deserializer)?;
        Ok(Raw(value.map(|v| v.as_raw_cow())))
    }
}

/// An array whose elements are kept as raw text, to be parsed one by one so that a bad
/// element costs only itself.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) enum Items<'a> {
    #[default]
    Absent,
    /// Present, but not an array (the JSON type is named).
    NotArray(&'static str),
    Array(Vec<Cow<'a, str>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Items<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Items<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(16));
                while let Some(item) = seq.next_element::<LazyValue<'a>>()? {
                    items.push(item.as_raw_cow());
                }
                Ok(Items::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Items::NotArray("object"))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Items::NotArray("null"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Items::NotArray("null"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Items::NotArray("boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Items::NotArray("number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Items::NotArray("number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Items::NotArray("number"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Items::NotArray("string"))
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

/// Whether a key is present at all, whatever its value.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Present(pub bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer)?;
        Ok(Present(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        s: Text<'a>,
        #[serde(default)]
        f: Flag,
        #[serde(borrow, default)]
        r: Raw<'a>,
        #[serde(default)]
        o: Obj<Inner>,
        #[serde(default)]
        first: First<Obj<Inner>>,
        #[serde(borrow, default)]
        items: Items<'a>,
        #[serde(default)]
        present: Present,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Inner {
        #[serde(default)]
        a: Flag,
    }

    fn probe(json: &str) -> Probe<'_> {
        sonic_rs::from_str(json).expect("lenient types accept any value")
    }

    #[test]
    fn text_borrows_plain_strings_and_owns_escaped_ones() {
        let p = probe(r#"{"s":"plain"}"#);
        assert!(matches!(p.s.0, Some(Cow::Borrowed("plain"))));
        let p = probe(r#"{"s":"a\"b"}"#);
        assert_eq!(p.s.as_deref(), Some("a\"b"));
    }

    #[test]
    fn text_keeps_scalars_as_text_and_drops_containers() {
        assert_eq!(probe(r#"{"s":12}"#).s.as_deref(), Some("12"));
        assert_eq!(probe(r#"{"s":true}"#).s.as_deref(), Some("true"));
        assert_eq!(probe(r#"{"s":{"x":[1,2]}}"#).s.as_deref(), None);
        assert_eq!(probe(r#"{"s":[1]}"#).s.as_deref(), None);
        assert_eq!(probe(r#"{"s":null}"#).s.as_deref(), None);
        assert_eq!(probe(r#"{"s":""}"#).s.as_deref(), None);
    }

    #[test]
    fn flag_coerces_strings() {
        assert_eq!(probe(r#"{"f":"True"}"#).f, Flag(Some(true)));
        assert_eq!(probe(r#"{"f":"false"}"#).f, Flag(Some(false)));
        assert_eq!(probe(r#"{"f":true}"#).f, Flag(Some(true)));
        assert_eq!(probe(r#"{"f":"maybe"}"#).f, Flag(None));
        assert_eq!(probe(r#"{"f":{}}"#).f, Flag(None));
    }

    #[test]
    fn raw_keeps_the_exact_text() {
        let p = probe(r#"{"r": {"k" : [1, "x"]} }"#);
        assert_eq!(p.r.0.as_deref(), Some(r#"{"k" : [1, "x"]}"#));
        assert!(matches!(p.r.0, Some(Cow::Borrowed(_))));
        assert!(probe(r#"{"r":null}"#).r.0.is_none());
    }

    #[test]
    fn obj_ignores_non_objects() {
        assert_eq!(probe(r#"{"o":"x"}"#).o, Obj(None));
        assert_eq!(probe(r#"{"o":[1,2]}"#).o, Obj(None));
        assert_eq!(
            probe(r#"{"o":{"a":"true","b":1}}"#).o,
            Obj(Some(Inner {
                a: Flag(Some(true))
            }))
        );
    }

    #[test]
    fn first_accepts_an_array_or_a_single_object() {
        assert_eq!(
            probe(r#"{"first":[{"a":true},{"a":false}]}"#).first,
            First(Some(Obj(Some(Inner {
                a: Flag(Some(true))
            }))))
        );
        assert_eq!(
            probe(r#"{"first":{"a":false}}"#).first,
            First(Some(Obj(Some(Inner {
                a: Flag(Some(false))
            }))))
        );
        assert_eq!(probe(r#"{"first":[]}"#).first, First(None));
    }

    #[test]
    fn items_keep_each_element_raw() {
        let p = probe(r#"{"items":[{"a":1}, 2 ,"x"]}"#);
        assert_eq!(
            p.items,
            Items::Array(vec![r#"{"a":1}"#.into(), "2".into(), r#""x""#.into()])
        );
        assert_eq!(
            probe(r#"{"items":{"a":1}}"#).items,
            Items::NotArray("object")
        );
        assert_eq!(probe("{}").items, Items::Absent);
    }

    #[test]
    fn present_notices_null() {
        assert!(probe(r#"{"present":null}"#).present.0);
        assert!(!probe("{}").present.0);
    }
}
