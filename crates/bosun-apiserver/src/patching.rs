//! Applying PATCH bodies to the JSON of an object with `bosun_api::patch`, and mapping
//! its errors to Status responses with upstream's codes.

use bosun_api::patch::{self, PatchError, PatchType};
use bosun_api::resources::ResourceDef;
use bosun_api::{StatusError, StatusReason};
use serde_json::Value;

use crate::codec::BodyType;

fn patch_type(ty: BodyType) -> Result<PatchType, StatusError> {
    match ty {
        BodyType::JsonPatch => Ok(PatchType::Json),
        BodyType::MergePatch => Ok(PatchType::Merge),
        BodyType::StrategicMergePatch => Ok(PatchType::Strategic),
        _ => Err(StatusError::unsupported_media_type(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json",
        )),
    }
}

fn status_of(e: PatchError) -> StatusError {
    let code = e.status_code();
    let reason = match code {
        400 => StatusReason::BadRequest,
        413 => StatusReason::RequestEntityTooLarge,
        415 => StatusReason::UnsupportedMediaType,
        422 => StatusReason::Invalid,
        _ => StatusReason::InternalError,
    };
    let mut s = StatusError::new(reason, e.to_string());
    s.code = code;
    s
}

/// Applies a patch of `ty` to `current`, an object of `group/version/kind`.
pub fn apply(
    ty: BodyType,
    current: &Value,
    body: &[u8],
    group: &str,
    version: &str,
    kind: &str,
) -> Result<Value, StatusError> {
    let t = patch_type(ty)?;
    if t == PatchType::Json {
        // Upstream refuses JSON patches of more than 10,000 operations.
        if let Ok(Value::Array(ops)) = serde_json::from_slice::<Value>(body) {
            if ops.len() > 10_000 {
                return Err(StatusError::too_large(format!(
                    "The allowed maximum operations in a JSON patch is 10000, got {}",
                    ops.len()
                )));
            }
        }
    }
    patch::apply_patch(t, current, body, group, version, kind).map_err(status_of)
}

/// Applies a patch to an object served at `def`.
pub fn apply_to(
    def: &ResourceDef,
    ty: BodyType,
    current: &Value,
    body: &[u8],
) -> Result<Value, StatusError> {
    apply(ty, current, body, def.group, def.version, def.kind)
}
