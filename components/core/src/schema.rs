//! What the API's inputs look like, read off the types that parse them: JSON bodies and
//! queries are first read into plain structs whose field names are the names on the wire, so
//! the OpenAPI document can be checked against the code (see `tests/openapi.rs`).

use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::http::Request;

/// Reads `body` as a JSON object into `T` (its known fields; others are ignored). Arrays and
/// scalars are refused: a derived struct would otherwise accept `[…]` field by field.
pub fn json_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    let Value::Object(fields) = value else {
        return Err(ApiError::InvalidJson("expected a JSON object".into()));
    };
    serde_json::from_value(Value::Object(fields)).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

/// Reads the query into `T`, whose fields are all `Option<String>`; the first value of a
/// repeated parameter wins.
pub fn query<T: DeserializeOwned + Default>(request: &Request) -> T {
    let mut fields = Map::new();
    for (name, value) in form_urlencoded::parse(request.query.as_bytes()) {
        fields
            .entry(name.into_owned())
            .or_insert_with(|| Value::String(value.into_owned()));
    }
    // Every field is an optional string and every value a string, so this cannot fail.
    serde_json::from_value(Value::Object(fields)).unwrap_or_default()
}

/// A JSON number that is whole, however it is written (`50000`, `50000.0`, `5e4`): JSON has
/// one number type. Decimals beyond 2^53, where a float stops being exact, are not.
pub fn whole_number(number: &serde_json::Number) -> Option<serde_json::Number> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if number.is_i64() || number.is_u64() {
        return Some(number.clone());
    }
    let float = number.as_f64()?;
    // Within ±2^53 a whole float converts to i64 exactly.
    (float.fract() == 0.0 && float.abs() <= EXACT).then(|| serde_json::Number::from(float as i64))
}

/// The `/deposit/status` query.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusQuery {
    /// The deposit asked for.
    pub deposit_id: Option<String>,
    /// Or its invoice's reference.
    pub reference: Option<String>,
}

/// The `/deposit/retry-credit` query.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryQuery {
    /// The deposit to deliver.
    pub deposit_id: Option<String>,
}

/// The console's `/admin/deposits` query.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// State filter (see [`crate::console::StatusFilter`]).
    pub status: Option<String>,
    /// Gateway.
    pub gateway: Option<String>,
    /// User id.
    pub user_id: Option<String>,
    /// Bot id.
    pub bot: Option<String>,
    /// Created at or after (Unix ms).
    pub from: Option<String>,
    /// Created at or before (Unix ms).
    pub to: Option<String>,
    /// Page size.
    pub limit: Option<String>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

/// The body of `/admin/action/refund-handled`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundHandledBody {
    /// The invoice refunded.
    pub reference: String,
    /// Why, for the record (1 to 500 characters).
    pub reason: String,
}

/// The wire names of the fields of struct `T` (as its `Deserialize` declares them).
pub fn field_names<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut recorder = FieldRecorder(None);
    // The recorder answers every request with an error once it has seen the field list.
    let _ = T::deserialize(&mut recorder);
    recorder.0.unwrap_or(&[])
}

/// A deserializer that only notes the field list a struct asks for.
struct FieldRecorder(Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for &mut FieldRecorder {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = Some(fields);
        Err(de::Error::custom("fields noted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_the_wire_names() {
        assert_eq!(field_names::<StatusQuery>(), ["depositId", "reference"]);
    }

    #[test]
    fn query_takes_the_first_value_and_ignores_others() {
        let q: StatusQuery = query(&Request::new(
            "GET",
            "/x?depositId=a%2Db&depositId=c&other=1",
        ));
        assert_eq!(q.deposit_id.as_deref(), Some("a-b"));
        assert_eq!(q.reference, None);
    }

    #[test]
    fn json_object_refuses_arrays() {
        let result: Result<StatusQuery, _> = json_object(br#"["a","b"]"#);
        assert_eq!(result.unwrap_err().code(), "INVALID_JSON");
    }
}
