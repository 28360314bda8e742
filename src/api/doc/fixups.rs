//! What the derive cannot write into the documents.

use serde_json::{Value, json};

/// A patch is the version read and at least one change (an empty one is refused with 422), so
/// its body has at least two properties. utoipa 5.5 writes `#[schema(min_properties)]` as
/// `maxProperties`, so it is set here.
pub(crate) fn patch_changes_something(doc: &mut Value) {
    if let Some(schema) = doc
        .pointer_mut("/components/schemas/PatchSaleRequest")
        .and_then(Value::as_object_mut)
    {
        schema.insert("minProperties".into(), json!(2));
    }
}
