//! Request bodies defined once. A request type derives `serde::Deserialize` and
//! `utoipa::ToSchema`; its schema is what the API document shows for the body, and [`parse`]
//! checks a body against that same schema before deserializing it. So every constraint the
//! document states (types, required and unknown properties, minimum/maximum, lengths,
//! patterns, formats, enums, item counts) is the one enforced, with every violation reported
//! at once as a field error. Rules no schema can state (a time in the future, a catalog entry
//! named twice) are the domain parser's, after this.
//!
//! The checks are the JSON Schema keywords utoipa emits, with the same meaning: lengths count
//! characters (code points), `pattern` is searched for (anchor it to match the whole string),
//! `format` is enforced for `uuid` (hyphenated), `date-time` (RFC 3339 with an offset),
//! `date` (`YYYY-MM-DD`), `int32` and `int64`; other formats (`email`, `password`) are hints
//! whose rules, if any, the domain parser enforces.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};
use utoipa::ToSchema;

use crate::error::{FieldError, FieldErrors};
use crate::json::Object;

/// A request type's schema with the named schemas it refers to, as JSON.
#[derive(Debug, Clone)]
pub struct Schema {
    name: String,
    root: Value,
    components: BTreeMap<String, Value>,
}

impl Schema {
    /// `T`'s schema as the API document has it.
    pub fn of<T: ToSchema>() -> Self {
        let mut referenced = Vec::new();
        T::schemas(&mut referenced);
        let components = referenced
            .into_iter()
            .map(|(name, schema)| (name, to_json(&schema)))
            .collect();
        Self {
            name: T::name().into_owned(),
            root: to_json(&T::schema()),
            components,
        }
    }

    /// The type's name in the document (`components.schemas`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema itself.
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// `schema` with a `$ref` followed to the schema it names (other schemas unchanged).
    pub fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let mut schema = schema;
        for _ in 0..16 {
            match schema.get("$ref").and_then(Value::as_str) {
                Some(reference) => {
                    let name = reference.rsplit('/').next().unwrap_or_default();
                    match self.components.get(name) {
                        Some(target) => schema = target,
                        None => return schema,
                    }
                }
                None => return schema,
            }
        }
        schema
    }

    /// Every way `value` breaks the schema, as field errors (empty when it conforms).
    /// One error per field: the first found (an `allOf` can break one property twice).
    pub fn check(&self, value: &Value) -> FieldErrors {
        let mut errors = FieldErrors::new();
        self.check_at(&self.root, value, "", &mut errors);
        let mut first = FieldErrors::new();
        for error in errors {
            if first.get(&error.field).is_none() {
                first.push(error);
            }
        }
        first
    }

    fn check_at(&self, schema: &Value, value: &Value, path: &str, errors: &mut FieldErrors) {
        let schema = self.resolve(schema);
        let Some(keywords) = schema.as_object() else {
            return; // `true` or an empty schema: anything goes.
        };
        if let Some(branches) = keywords.get("oneOf").and_then(Value::as_array) {
            self.check_one_of(branches, value, path, errors);
        }
        for combined in ["allOf", "anyOf"] {
            if let Some(branches) = keywords.get(combined).and_then(Value::as_array) {
                if combined == "allOf" {
                    for branch in branches {
                        self.check_at(branch, value, path, errors);
                    }
                } else {
                    self.check_one_of(branches, value, path, errors);
                }
            }
        }
        if let Some(types) = keywords.get("type") {
            if !type_matches(types, value) {
                errors.push(FieldError::new(field(path), type_message(types, value)));
                return;
            }
        }
        if let Some(allowed) = keywords.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                let names: Vec<String> = allowed
                    .iter()
                    .filter(|v| !v.is_null())
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect();
                errors.push(FieldError::new(
                    field(path),
                    format!("must be one of {}", names.join(", ")),
                ));
                return;
            }
        }
        match value {
            Value::String(s) => check_string(keywords, s, path, errors),
            Value::Number(n) => check_number(keywords, n, path, errors),
            Value::Array(items) => self.check_array(keywords, items, path, errors),
            Value::Object(object) => self.check_object(keywords, object, path, errors),
            Value::Null | Value::Bool(_) => {}
        }
    }

    /// `oneOf` (and `anyOf`): the value must fit a branch. When it fits none, the errors of
    /// the branch it came closest to are reported: the fewest errors, then the fewest about
    /// values the body gives (a branch that only asks for a missing property is closer than
    /// one that contradicts what was sent: `{"kind":"service"}` without its duration is
    /// told the duration is required, not that the kind must be `product`), then the first.
    fn check_one_of(&self, branches: &[Value], value: &Value, path: &str, out: &mut FieldErrors) {
        let distance = |errors: &FieldErrors| {
            let missing = errors
                .as_slice()
                .iter()
                .filter(|e| e.message == REQUIRED)
                .count();
            (errors.len(), errors.len() - missing)
        };
        let mut closest: Option<FieldErrors> = None;
        for branch in branches {
            let mut errors = FieldErrors::new();
            self.check_at(branch, value, path, &mut errors);
            if errors.is_empty() {
                return;
            }
            if closest
                .as_ref()
                .is_none_or(|c| distance(&errors) < distance(c))
            {
                closest = Some(errors);
            }
        }
        for error in closest.into_iter().flatten() {
            out.push(error);
        }
    }

    fn check_array(
        &self,
        keywords: &Map<String, Value>,
        items: &[Value],
        path: &str,
        errors: &mut FieldErrors,
    ) {
        if let Some(max) = keywords.get("maxItems").and_then(Value::as_u64) {
            if items.len() as u64 > max {
                errors.push(FieldError::new(
                    field(path),
                    format!("must hold at most {max} items"),
                ));
                return;
            }
        }
        if let Some(min) = keywords.get("minItems").and_then(Value::as_u64) {
            if (items.len() as u64) < min {
                errors.push(FieldError::new(
                    field(path),
                    format!("must hold at least {min} items"),
                ));
                return;
            }
        }
        if let Some(item_schema) = keywords.get("items") {
            for (index, item) in items.iter().enumerate() {
                self.check_at(item_schema, item, &format!("{path}[{index}]"), errors);
            }
        }
    }

    fn check_object(
        &self,
        keywords: &Map<String, Value>,
        object: &Object,
        path: &str,
        errors: &mut FieldErrors,
    ) {
        let empty = Map::new();
        let properties = keywords
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let nested = |name: &str| {
            if path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            }
        };
        for (name, property) in properties {
            if let Some(value) = object.get(name) {
                self.check_at(property, value, &nested(name), errors);
            }
        }
        for name in keywords
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(name) {
                errors.push(FieldError::new(nested(name), REQUIRED));
            }
        }
        let additional = keywords.get("additionalProperties");
        for (name, value) in object {
            if properties.contains_key(name) {
                continue;
            }
            match additional {
                Some(Value::Bool(false)) => {
                    errors.push(FieldError::new(nested(name), "is not a known field"));
                }
                Some(schema @ Value::Object(_)) => {
                    self.check_at(schema, value, &nested(name), errors);
                }
                _ => {}
            }
        }
    }
}

/// What a missing required property is told.
const REQUIRED: &str = "is required";

fn to_json<S: serde::Serialize>(schema: &S) -> Value {
    serde_json::to_value(schema).expect("a utoipa schema serializes")
}

/// The name errors carry for `path`; the body itself is `body`.
fn field(path: &str) -> String {
    if path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    }
}

/// The JSON Schema type names `value` has (an integer is also a number).
fn kinds(value: &Value) -> &'static [&'static str] {
    match value {
        Value::Null => &["null"],
        Value::Bool(_) => &["boolean"],
        Value::Number(n) if is_whole(n) => &["integer", "number"],
        Value::Number(_) => &["number"],
        Value::String(_) => &["string"],
        Value::Array(_) => &["array"],
        Value::Object(_) => &["object"],
    }
}

/// Whether `n` is an integer in JSON Schema's sense: `1.0` is one, as `1` is.
fn is_whole(n: &Number) -> bool {
    n.is_i64()
        || n.is_u64()
        || n.as_f64()
            .is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
}

/// Whole numbers written with a fraction (`1.0`) as integers, so serde reads them into
/// integer fields as the schema allows.
fn normalize(value: &mut Value) {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() && is_whole(n) => {
            if let Some(f) = n.as_f64() {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        Value::Object(object) => object.values_mut().for_each(normalize),
        _ => {}
    }
}

fn type_names(types: &Value) -> Vec<&str> {
    match types {
        Value::String(name) => vec![name.as_str()],
        Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn type_matches(types: &Value, value: &Value) -> bool {
    let names = type_names(types);
    names.is_empty() || kinds(value).iter().any(|kind| names.contains(kind))
}

fn type_message(types: &Value, value: &Value) -> String {
    let wanted: Vec<&str> = type_names(types)
        .into_iter()
        .filter(|name| *name != "null")
        .map(|name| match name {
            "integer" => "an integer",
            "number" => "a number",
            "string" => "a string",
            "boolean" => "a boolean",
            "array" => "a list",
            "object" => "an object",
            _ => "a value of another type",
        })
        .collect();
    if wanted.is_empty() {
        return "must be left out (or null) here".to_owned();
    }
    if wanted == ["an integer"] && matches!(value, Value::Number(_)) {
        return "must be a whole number".to_owned();
    }
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    format!("must be {}, not {actual}", wanted.join(" or "))
}

fn check_string(keywords: &Map<String, Value>, s: &str, path: &str, errors: &mut FieldErrors) {
    let chars = s.chars().count() as u64;
    let min = keywords.get("minLength").and_then(Value::as_u64);
    let max = keywords.get("maxLength").and_then(Value::as_u64);
    let length_message = match (min, max) {
        (Some(min), Some(max)) if min == max => format!("must be {min} characters long"),
        (Some(1), Some(max)) => format!("must be 1 to {max} characters long"),
        (Some(min), Some(max)) => format!("must be {min} to {max} characters long"),
        (Some(1), None) => "must not be empty".to_owned(),
        (Some(min), None) => format!("must be at least {min} characters long"),
        (None, Some(max)) => format!("must be at most {max} characters long"),
        (None, None) => String::new(),
    };
    if min.is_some_and(|min| chars < min) || max.is_some_and(|max| chars > max) {
        errors.push(FieldError::new(field(path), length_message));
        return;
    }
    if let Some(pattern) = keywords.get("pattern").and_then(Value::as_str) {
        if !pattern_matches(pattern, s) {
            errors.push(FieldError::new(
                field(path),
                format!("must match the pattern {pattern}"),
            ));
            return;
        }
    }
    let format_error = match keywords.get("format").and_then(Value::as_str) {
        Some("uuid") if !is_uuid(s) => Some("must be a UUID (8-4-4-4-12 hexadecimal digits)"),
        Some("date-time") if chrono::DateTime::parse_from_rfc3339(s).is_err() => {
            Some("must be an RFC 3339 date-time with an offset, e.g. 2030-05-01T10:30:00+03:00")
        }
        Some("date") if !is_date(s) => Some("must be a date like 2025-03-01"),
        _ => None,
    };
    if let Some(message) = format_error {
        errors.push(FieldError::new(field(path), message));
    }
}

/// Whether `pattern` (a JSON Schema pattern: not anchored unless it says so) occurs in `s`.
/// A pattern this crate cannot compile matches nothing, so a bad one fails its tests.
pub fn pattern_matches(pattern: &str, s: &str) -> bool {
    regex_lite::Regex::new(pattern).is_ok_and(|regex| regex.is_match(s))
}

/// The hyphenated form RFC 9562 writes and JSON Schema's `uuid` format means.
pub fn is_uuid(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn is_date(s: &str) -> bool {
    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// A JSON number as an exact decimal: its digits and the power of ten they are scaled by
/// (`12.5` is `(125, -1)`), read from the text serde_json prints for it.
fn decimal(n: &Number) -> Option<(i128, i32)> {
    let text = n.to_string();
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m.to_owned(), e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((&mantissa, ""));
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    Some((digits, exponent - fraction.len() as i32))
}

/// `a` compared with `b`, exactly for the decimals JSON carries.
fn compare(a: &Number, b: &Number) -> Option<std::cmp::Ordering> {
    let ((da, ea), (db, eb)) = (decimal(a)?, decimal(b)?);
    let scale = ea.min(eb);
    let up = |d: i128, e: i32| d.checked_mul(10_i128.checked_pow((e - scale) as u32)?);
    match (up(da, ea), up(db, eb)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// Whether `n` is a whole multiple of `step`, exactly (0.57 is a multiple of 0.01;
/// 0.5700000000000001 is not).
fn is_multiple(n: &Number, step: &Number) -> bool {
    let (Some((dn, en)), Some((ds, es))) = (decimal(n), decimal(step)) else {
        return false;
    };
    if ds == 0 {
        return false;
    }
    let scale = en.min(es);
    let up = |d: i128, e: i32| d.checked_mul(10_i128.checked_pow((e - scale) as u32)?);
    match (up(dn, en), up(ds, es)) {
        (Some(n), Some(s)) => n % s == 0,
        _ => false,
    }
}

fn check_number(keywords: &Map<String, Value>, n: &Number, path: &str, errors: &mut FieldErrors) {
    use std::cmp::Ordering::{Greater, Less};
    let bound = |name: &str| keywords.get(name).and_then(Value::as_number);
    let whole = keywords.get("type").is_some_and(|t| {
        let names = type_names(t);
        names.contains(&"integer") && !names.contains(&"number")
    });
    let (low, high) = match keywords.get("format").and_then(Value::as_str) {
        Some("int32") => (Some(Number::from(i32::MIN)), Some(Number::from(i32::MAX))),
        Some("int64") => (Some(Number::from(i64::MIN)), Some(Number::from(i64::MAX))),
        _ => (None, None),
    };
    let minimum = bound("minimum").cloned().or(low);
    let maximum = bound("maximum").cloned().or(high);
    let exclusive_minimum = bound("exclusiveMinimum");
    let exclusive_maximum = bound("exclusiveMaximum");
    let out_of_range = minimum
        .as_ref()
        .is_some_and(|m| compare(n, m) == Some(Less))
        || maximum
            .as_ref()
            .is_some_and(|m| compare(n, m) == Some(Greater))
        || exclusive_minimum.is_some_and(|m| compare(n, m) != Some(Greater))
        || exclusive_maximum.is_some_and(|m| compare(n, m) != Some(Less));
    if out_of_range {
        let low = match (&minimum, exclusive_minimum) {
            (_, Some(m)) => Some(format!("more than {m}")),
            (Some(m), None) => Some(format!("{m}")),
            (None, None) => None,
        };
        let high = match (&maximum, exclusive_maximum) {
            (_, Some(m)) => Some(format!("less than {m}")),
            (Some(m), None) => Some(format!("{m}")),
            (None, None) => None,
        };
        let what = if whole { "a whole number" } else { "a number" };
        let message = match (low, high) {
            (Some(low), Some(high))
                if exclusive_minimum.is_none() && exclusive_maximum.is_none() =>
            {
                format!("must be {what} from {low} to {high}")
            }
            (Some(low), Some(high)) => format!("must be {what} {low} and at most {high}"),
            (Some(low), None) if exclusive_minimum.is_some() => format!("must be {low}"),
            (Some(low), None) => format!("must be at least {low}"),
            (None, Some(high)) => format!("must be at most {high}"),
            (None, None) => unreachable!("a bound was broken"),
        };
        errors.push(FieldError::new(field(path), message));
        return;
    }
    if let Some(step) = bound("multipleOf") {
        if !is_multiple(n, step) {
            errors.push(FieldError::new(
                field(path),
                format!("must be a multiple of {step}"),
            ));
        }
    }
}

/// `base` (a derived object schema) with `also` required of the same value: `allOf: [base,
/// also]`, `base`'s example and description moved to the top, where readers (and
/// [`disagreements`]) look for them. For a rule between properties that derive cannot say,
/// such as "a registration's number has this pattern" (`also` a `oneOf`).
pub fn all_of(
    base: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
    also: utoipa::openapi::schema::Schema,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{AllOfBuilder, Schema as S};
    use utoipa::openapi::RefOr;
    let mut base = base;
    let (example, description) = match &mut base {
        #[allow(deprecated)]
        RefOr::T(S::Object(object)) => (object.example.take(), object.description.take()),
        _ => (None, None),
    };
    AllOfBuilder::new()
        .item(base)
        .item(also)
        .description(description)
        .examples(example)
        .into()
}

/// Reads a request body as `T`: checks it against `T`'s schema (every violation reported at
/// once, 422 via [`FieldErrors`]), then deserializes it.
pub fn parse<T: ToSchema + DeserializeOwned>(body: &Object) -> Result<T, FieldErrors> {
    let mut value = Value::Object(body.clone());
    let errors = Schema::of::<T>().check(&value);
    if !errors.is_empty() {
        return Err(errors);
    }
    normalize(&mut value);
    serde_json::from_value(value).map_err(|error| {
        // The schema and the type disagree: a bug, reported rather than hidden.
        FieldError::new(
            "body",
            format!("does not fit the documented schema: {error}"),
        )
        .into()
    })
}

/// A request body type and the parser that reads it: what tests need to hold the document
/// and the parsers together (see [`crate::testing::assert_parser_follows_schema`]).
pub struct Documented {
    pub schema: Schema,
    pub parse: Parser,
}

/// A body parser with its result dropped: only whether it accepts, and what it names.
pub type Parser = Box<dyn Fn(&Object) -> Result<(), FieldErrors>>;

impl Documented {
    pub fn new<T: ToSchema, R>(
        parse: impl Fn(&Object) -> Result<R, FieldErrors> + 'static,
    ) -> Self {
        Self {
            schema: Schema::of::<T>(),
            parse: Box::new(move |body| parse(body).map(drop)),
        }
    }
}

/// Where the parser and the document disagree on `documented`'s body, one line each (empty
/// when they agree). Walks the schema: the example must be accepted; then, per property (in
/// nested objects and list items too) and per constraint the schema states, a value at the
/// bound must be accepted and one beyond it refused naming the property, as must a missing
/// required property, an unknown one where `additionalProperties` is false (accepted where
/// it is not), a value of the wrong type, each enum value (accepted) and a non-member, and
/// variations of the example around its pattern and format.
pub fn disagreements(documented: &Documented) -> Vec<String> {
    let schema = &documented.schema;
    let root = schema.resolve(schema.root());
    let example = root
        .get("examples")
        .and_then(|examples| examples.get(0))
        .or_else(|| root.get("example"));
    let Some(Value::Object(example)) = example else {
        return vec![format!("{} has no object example", schema.name())];
    };
    let mut walk = Walk {
        documented,
        example: Value::Object(example.clone()),
        found: Vec::new(),
    };
    walk.expect(&walk.example.clone(), "", true, "the example");
    walk.object(root, &[]);
    walk.found
}

/// A step from the body to a value inside it.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn path_name(path: &[Step]) -> String {
    let mut name = String::new();
    for step in path {
        match step {
            Step::Key(key) if name.is_empty() => name.push_str(key),
            Step::Key(key) => {
                name.push('.');
                name.push_str(key);
            }
            Step::Index(index) => name.push_str(&format!("[{index}]")),
        }
    }
    name
}

fn at<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut value = value;
    for step in path {
        value = match step {
            Step::Key(key) => value.as_object_mut()?.get_mut(key)?,
            Step::Index(index) => value.as_array_mut()?.get_mut(*index)?,
        };
    }
    Some(value)
}

struct Walk<'a> {
    documented: &'a Documented,
    example: Value,
    found: Vec<String>,
}

impl Walk<'_> {
    /// Sends `body`; `accepted` is what the constraint under test says. A refusal must name
    /// `field`. A body the constraint allows but another part of the schema refuses (an
    /// enum value another branch of a `oneOf` rules out) tests nothing and is skipped; one
    /// the constraint forbids but the schema as a whole accepts is a disagreement.
    fn expect(&mut self, body: &Value, field: &str, accepted: bool, what: &str) {
        let Value::Object(object) = body else { return };
        let name = self.documented.schema.name();
        let documented = self.documented.schema.check(body).is_empty();
        if accepted && !documented {
            return;
        }
        if !accepted && documented {
            self.found.push(format!(
                "{name}: {what} should be refused, but the schema check allows it: {body}"
            ));
            return;
        }
        match ((self.documented.parse)(object), accepted) {
            (Ok(()), true) => {}
            (Err(errors), false) => {
                if !field.is_empty() && !errors.as_slice().iter().any(|e| e.field == field) {
                    self.found.push(format!(
                        "{name}: {what} is refused, but not naming {field}: {errors:?}"
                    ));
                }
            }
            (Ok(()), false) => self.found.push(format!(
                "{name}: {what} is accepted; the document forbids it: {body}"
            )),
            (Err(errors), true) => self.found.push(format!(
                "{name}: {what} is refused ({errors:?}); the document allows it: {body}"
            )),
        }
    }

    /// The example with the value at `path` replaced (`None`: removed).
    fn with(&self, path: &[Step], value: Option<Value>) -> Value {
        let mut body = self.example.clone();
        let (last, parent) = path.split_last().expect("a property path");
        if let Some(parent) = at(&mut body, parent) {
            match (last, parent, value) {
                (Step::Key(key), Value::Object(object), Some(value)) => {
                    object.insert(key.clone(), value);
                }
                (Step::Key(key), Value::Object(object), None) => {
                    object.remove(key);
                }
                (Step::Index(index), Value::Array(items), Some(value)) => items[*index] = value,
                (Step::Index(index), Value::Array(items), None) => {
                    items.remove(*index);
                }
                _ => {}
            }
        }
        body
    }

    fn try_value(&mut self, path: &[Step], value: Value, accepted: bool, what: &str) {
        let body = self.with(path, Some(value.clone()));
        let field = path_name(path);
        self.expect(
            &body,
            &field,
            accepted,
            &format!("{field} = {value} ({what})"),
        );
    }

    /// The object schema `schema` of the example's value at `path`.
    fn object(&mut self, schema: &Value, path: &[Step]) {
        let schema = self.documented.schema.resolve(schema);
        let example = at(&mut self.example.clone(), path).cloned();
        // Every part of an allOf is required of the same object.
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            for part in parts.clone() {
                self.object(&part, path);
            }
            return;
        }
        // A oneOf of object shapes: walk the one the example takes.
        if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
            let branch = branches.iter().find(|branch| {
                let mut errors = FieldErrors::new();
                if let Some(example) = &example {
                    self.documented
                        .schema
                        .check_at(branch, example, "", &mut errors);
                }
                errors.is_empty()
            });
            if let Some(branch) = branch {
                self.object(branch, path);
            }
            return;
        }
        let Some(Value::Object(example)) = example else {
            return;
        };
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (name, property) in &properties {
            let mut inner = path.to_vec();
            inner.push(Step::Key(name.clone()));
            let field = path_name(&inner);
            if required.contains(&name.as_str()) {
                let body = self.with(&inner, None);
                self.expect(&body, &field, false, &format!("a body without {field}"));
            } else if example.contains_key(name) {
                let body = self.with(&inner, None);
                self.expect(&body, "", true, &format!("a body without {field}"));
            }
            if let Some(value) = example.get(name) {
                self.property(property, &inner, value.clone());
            }
        }
        let unknown = "an_undocumented_property";
        let mut extra = path.to_vec();
        extra.push(Step::Key(unknown.into()));
        let refused = schema.get("additionalProperties") == Some(&Value::Bool(false));
        let body = self.with(&extra, Some(Value::from(1)));
        self.expect(
            &body,
            &path_name(&extra),
            !refused,
            &format!("an unknown property {}", path_name(&extra)),
        );
    }

    /// Every constraint of `schema`, the schema of the example's `value` at `path`.
    fn property(&mut self, schema: &Value, path: &[Step], value: Value) {
        let resolved = self.documented.schema.resolve(schema).clone();
        // `oneOf: [X, {type: null}]` is an optional X.
        let schema = match resolved.get("oneOf").and_then(Value::as_array) {
            Some(_) if value.is_null() => return,
            Some(branches) => {
                let non_null: Vec<&Value> = branches
                    .iter()
                    .filter(|b| b.get("type") != Some(&Value::from("null")))
                    .collect();
                if non_null.len() == 1 {
                    self.documented.schema.resolve(non_null[0]).clone()
                } else {
                    // Several shapes (e.g. a number or a numeric string): each in turn.
                    for branch in non_null {
                        let branch = self.documented.schema.resolve(branch).clone();
                        let mut errors = FieldErrors::new();
                        self.documented
                            .schema
                            .check_at(&branch, &value, "", &mut errors);
                        if errors.is_empty() {
                            self.constraints(&branch, path, &value);
                        }
                    }
                    return;
                }
            }
            None => resolved,
        };
        self.constraints(&schema, path, &value);
    }

    fn constraints(&mut self, schema: &Value, path: &[Step], value: &Value) {
        let keywords = schema.as_object().cloned().unwrap_or_default();
        let types = keywords.get("type").map(type_names).unwrap_or_default();
        // A value of a type the schema does not allow.
        let wrong = if types.contains(&"string") {
            Value::from(12345)
        } else {
            Value::from("a string")
        };
        if !types.is_empty() {
            self.try_value(path, wrong, false, "the wrong type");
        }
        if let Some(allowed) = keywords.get("enum").and_then(Value::as_array) {
            for member in allowed {
                self.try_value(path, member.clone(), true, "an enum value");
            }
            self.try_value(
                path,
                Value::from("not-a-member"),
                false,
                "not an enum value",
            );
        }
        match value {
            Value::Number(n) => self.numbers(&keywords, path, n),
            Value::String(s) => self.strings(&keywords, path, s),
            Value::Array(items) => self.lists(&keywords, path, items),
            Value::Object(_) => self.object(schema, path),
            _ => {}
        }
    }

    fn numbers(&mut self, keywords: &Map<String, Value>, path: &[Step], example: &Number) {
        let whole = keywords
            .get("type")
            .is_some_and(|t| type_names(t).contains(&"integer"));
        let step = keywords
            .get("multipleOf")
            .and_then(Value::as_number)
            .and_then(decimal)
            .unwrap_or(if whole { (1, 0) } else { (1, -2) });
        let shift = |n: &Number, by: i128| -> Option<Value> {
            let (digits, exponent) = decimal(n)?;
            let scale = exponent.min(step.1);
            let up = |d: i128, e: i32| d.checked_mul(10_i128.checked_pow((e - scale) as u32)?);
            let sum = up(digits, exponent)? + by * up(step.0, step.1)?;
            number(sum, scale, whole)
        };
        let bound = |name: &str| keywords.get(name).and_then(Value::as_number).cloned();
        if let Some(min) = bound("minimum") {
            self.try_value(path, Value::Number(min.clone()), true, "the minimum");
            if let Some(below) = shift(&min, -1) {
                self.try_value(path, below, false, "below the minimum");
            }
        }
        if let Some(max) = bound("maximum") {
            self.try_value(path, Value::Number(max.clone()), true, "the maximum");
            if let Some(above) = shift(&max, 1) {
                self.try_value(path, above, false, "above the maximum");
            }
        }
        if let Some(min) = bound("exclusiveMinimum") {
            self.try_value(
                path,
                Value::Number(min.clone()),
                false,
                "the exclusive minimum",
            );
            if let Some(above) = shift(&min, 1) {
                self.try_value(path, above, true, "just above the exclusive minimum");
            }
        }
        if let Some(max) = bound("exclusiveMaximum") {
            self.try_value(
                path,
                Value::Number(max.clone()),
                false,
                "the exclusive maximum",
            );
            if let Some(below) = shift(&max, -1) {
                self.try_value(path, below, true, "just below the exclusive maximum");
            }
        }
        if let Some(step) = bound("multipleOf") {
            if let (Some((digits, exponent)), Some((sd, se))) = (decimal(example), decimal(&step)) {
                // Half a step off the example.
                let scale = exponent.min(se) - 1;
                let up = |d: i128, e: i32| d.checked_mul(10_i128.checked_pow((e - scale) as u32)?);
                if let (Some(n), Some(s)) = (up(digits, exponent), up(sd, se)) {
                    if let Some(off) = number(n + s / 2, scale, false) {
                        self.try_value(path, off, false, "not a multiple");
                    }
                }
            }
        }
        if whole {
            self.try_value(path, Value::from(1.5), false, "not a whole number");
        }
    }

    fn strings(&mut self, keywords: &Map<String, Value>, path: &[Step], example: &str) {
        let min = keywords.get("minLength").and_then(Value::as_u64);
        let max = keywords.get("maxLength").and_then(Value::as_u64);
        let pattern = keywords.get("pattern").and_then(Value::as_str);
        let fits = |s: &str| {
            let n = s.chars().count() as u64;
            min.is_none_or(|min| n >= min)
                && max.is_none_or(|max| n <= max)
                && pattern.is_none_or(|p| pattern_matches(p, s))
        };
        let email = keywords.get("format").and_then(Value::as_str) == Some("email");
        let sized = |n: u64| -> String {
            if email && n >= 5 {
                return sized_email(n as usize);
            }
            let chars: Vec<char> = if example.is_empty() {
                vec!['a']
            } else {
                example.chars().collect()
            };
            chars.iter().cycle().take(n as usize).collect()
        };
        let mut candidates: Vec<(String, &str)> = Vec::new();
        if let Some(min) = min {
            candidates.push((sized(min), "the minimum length"));
            if min > 0 {
                candidates.push((sized(min - 1), "below the minimum length"));
            }
        }
        if let Some(max) = max {
            candidates.push((sized(max), "the maximum length"));
            candidates.push((sized(max + 1), "above the maximum length"));
        }
        if pattern.is_some() {
            let first: String = example.chars().take(1).collect();
            let rest: String = example.chars().skip(1).collect();
            for (variant, what) in [
                (String::new(), "empty"),
                (" ".to_owned(), "a space"),
                ("!".to_owned(), "a symbol"),
                (format!(" {example} "), "the example in spaces"),
                (format!("{example}!"), "the example and a symbol"),
                (format!("!{rest}"), "the example with a symbol first"),
                (rest.clone(), "the example without its first character"),
                (
                    format!("{first}{example}"),
                    "the example with its first character twice",
                ),
                (example.to_uppercase(), "the example upper-cased"),
                (example.to_lowercase(), "the example lower-cased"),
                (format!("{example}\u{0}"), "the example and a NUL"),
            ] {
                candidates.push((variant, what));
            }
        }
        match keywords.get("format").and_then(Value::as_str) {
            Some("uuid") => {
                candidates.push((example.to_uppercase(), "an upper-case UUID"));
                candidates.push((example.replace('-', ""), "a UUID without hyphens"));
                candidates.push(("not-a-uuid".into(), "not a UUID"));
            }
            Some("date-time") => {
                candidates.push(("2030-05-01".into(), "a date without a time"));
                candidates.push(("2030-05-01T10:30:00".into(), "a time without an offset"));
            }
            Some("date") => {
                candidates.push(("2025-02-30".into(), "a day that does not exist"));
                candidates.push(("01.03.2025".into(), "another date format"));
            }
            _ => {}
        }
        for (candidate, what) in candidates {
            let mut errors = FieldErrors::new();
            self.documented.schema.check_at(
                &Value::Object(keywords.clone()),
                &Value::from(candidate.clone()),
                "",
                &mut errors,
            );
            // What the document says of it: its lengths and pattern by hand (the check
            // above also applies the format).
            let allowed = fits(&candidate) && errors.is_empty();
            self.try_value(path, Value::from(candidate), allowed, what);
        }
    }

    fn lists(&mut self, keywords: &Map<String, Value>, path: &[Step], items: &[Value]) {
        let Some(first) = items.first() else { return };
        let list = |n: u64| -> Value { Value::Array((0..n).map(|i| distinct(first, i)).collect()) };
        if let Some(max) = keywords.get("maxItems").and_then(Value::as_u64) {
            self.try_value(path, list(max), true, "the most items");
            self.try_value(path, list(max + 1), false, "too many items");
        }
        if let Some(min) = keywords.get("minItems").and_then(Value::as_u64) {
            self.try_value(path, list(min), true, "the fewest items");
            if min > 0 {
                self.try_value(path, list(min - 1), false, "too few items");
            }
        }
        if let Some(item_schema) = keywords.get("items") {
            let mut inner = path.to_vec();
            inner.push(Step::Index(0));
            self.property(item_schema, &inner, first.clone());
        }
    }
}

/// An email address of `n` (at least 5) characters: at most 64 before the `@`, a domain of
/// labels of at most 63, as addresses are.
fn sized_email(n: usize) -> String {
    let local = (n - 4).min(64);
    // The domain: labels of at most 63 joined by dots, then `.c`.
    let mut left = n - local - 1 - 2;
    let mut labels = Vec::new();
    while left > 63 {
        labels.push("d".repeat(62));
        left -= 63;
    }
    labels.push("d".repeat(left));
    format!("{}@{}.c", "e".repeat(local), labels.join("."))
}

/// `digits × 10^exponent` as a JSON number (an integer when `whole`).
fn number(digits: i128, exponent: i32, whole: bool) -> Option<Value> {
    if whole || exponent >= 0 {
        let n = digits.checked_mul(10_i128.checked_pow(exponent.max(0) as u32)?)?;
        return i64::try_from(n).ok().map(Value::from);
    }
    let places = (-exponent) as usize;
    let sign = if digits < 0 { "-" } else { "" };
    let text = format!("{:0>width$}", digits.abs(), width = places + 1);
    let (int, frac) = text.split_at(text.len() - places);
    serde_json::from_str(&format!("{sign}{int}.{frac}")).ok()
}

/// The `i`th copy of a list item: every UUID in it made different from the other copies'
/// (so rules like "one line per catalog entry" see distinct items).
fn distinct(item: &Value, i: u64) -> Value {
    match item {
        Value::String(s) if is_uuid(s) => {
            Value::from(format!("{}{:012x}", &s[..24], (i as u128) + 1))
        }
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(k, v)| (k.clone(), distinct(v, i)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| distinct(v, i)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Car {
        #[schema(min_length = 1, max_length = 3, pattern = "^[A-Z]+$")]
        plate: String,
        #[schema(minimum = 1886, maximum = 2100)]
        year: i32,
        owner: Option<uuid::Uuid>,
        #[schema(max_items = 2)]
        tags: Option<Vec<Tag>>,
        #[schema(exclusive_minimum = 0, multiple_of = 0.01)]
        price: f64,
    }

    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Tag {
        name: Kind,
    }

    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Red,
        Blue,
    }

    fn errors(body: Value) -> Vec<(String, String)> {
        match parse::<Car>(body.as_object().unwrap()) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| (e.field, e.message)).collect(),
        }
    }

    #[test]
    fn a_conforming_body_deserializes() {
        let car: Car = parse(
            json!({"plate": "ABC", "year": 2020, "owner": null, "price": 0.57,
                   "tags": [{"name": "red"}]})
            .as_object()
            .unwrap(),
        )
        .unwrap();
        assert_eq!((car.plate.as_str(), car.year), ("ABC", 2020));
    }

    #[test]
    fn every_violation_is_reported_with_its_field() {
        let found = errors(json!({
            "plate": "abcd", "year": 1885, "owner": "nope", "price": 0,
            "tags": [{"name": "green"}, {"name": "red", "x": 1}], "extra": true
        }));
        assert_eq!(
            found,
            [
                (
                    "owner".into(),
                    "must be a UUID (8-4-4-4-12 hexadecimal digits)".into()
                ),
                ("plate".into(), "must be 1 to 3 characters long".into()),
                ("price".into(), "must be more than 0".into()),
                ("tags[0].name".into(), "must be one of red, blue".into()),
                ("tags[1].x".into(), "is not a known field".into()),
                (
                    "year".into(),
                    "must be a whole number from 1886 to 2100".into()
                ),
                ("extra".into(), "is not a known field".into()),
            ]
        );
    }

    #[test]
    fn types_required_patterns_and_multiples() {
        assert_eq!(
            errors(json!({"plate": 7, "year": 2020.5, "price": 0.5700000000000001})),
            [
                (
                    "plate".to_owned(),
                    "must be a string, not a number".to_owned()
                ),
                ("price".into(), "must be a multiple of 0.01".into()),
                ("year".into(), "must be a whole number".into()),
            ]
        );
        assert_eq!(
            errors(json!({"plate": "AB1", "price": 1})),
            [
                (
                    "plate".to_owned(),
                    "must match the pattern ^[A-Z]+$".to_owned()
                ),
                ("year".into(), "is required".into()),
            ]
        );
        assert_eq!(
            errors(
                json!({"plate": "A", "year": 2000, "price": 1, "tags": [{"name": "red"}, {"name": "red"}, {"name": "red"}]})
            ),
            [("tags".to_owned(), "must hold at most 2 items".to_owned())]
        );
    }

    #[test]
    fn of_branches_none_fits_the_one_that_only_misses_a_property_is_reported() {
        let schema = Schema {
            name: "Entry".into(),
            components: BTreeMap::new(),
            root: json!({"oneOf": [
                {"type": "object", "required": ["kind"],
                 "properties": {"kind": {"enum": ["product"]}, "minutes": {"type": "null"}}},
                {"type": "object", "required": ["kind", "minutes"],
                 "properties": {"kind": {"enum": ["service"]}, "minutes": {"type": "integer"}}}
            ]}),
        };
        let named = |body: Value| -> Vec<(String, String)> {
            let errors = schema.check(&body);
            errors.into_iter().map(|e| (e.field, e.message)).collect()
        };
        assert_eq!(
            named(json!({"kind": "service"})),
            [("minutes".to_owned(), "is required".to_owned())]
        );
        assert_eq!(
            named(json!({"kind": "product", "minutes": 30})),
            [(
                "minutes".to_owned(),
                "must be left out (or null) here".to_owned()
            )]
        );
    }

    #[test]
    fn numbers_compare_exactly() {
        let n = |v: Value| v.as_number().unwrap().clone();
        assert!(is_multiple(&n(json!(1499.99)), &n(json!(0.01))));
        assert!(is_multiple(&n(json!(30)), &n(json!(0.01))));
        assert!(!is_multiple(&n(json!(0.001)), &n(json!(0.01))));
        assert_eq!(
            compare(&n(json!(2147483648_u64)), &n(json!(2147483647))),
            Some(std::cmp::Ordering::Greater)
        );
        assert_eq!(
            compare(&n(json!(1e-7)), &n(json!(0))),
            Some(std::cmp::Ordering::Greater)
        );
    }
}
