//! The operations the gateway answers itself, never forwarded: OpenAI `GET /v1/models`, Ollama
//! `GET /api/tags`, `POST /api/show` and `GET /api/version`. Only models the caller's key may use
//! are ever listed or shown; a model it may not use looks exactly like one that does not exist.

use crate::auth::ClientKey;
use crate::ir::ErrorInfo;
use crate::roles::gateway::{not_found, ok_json};
use crate::routing::Router;
use crate::wire::{ClientApi, Reply};
use serde_json::json;

/// The answer to a listing operation (`/v1/models`, `/api/tags`, `/api/version`); `None` for
/// every other operation.
pub fn list(api: ClientApi, key: &ClientKey, router: &Router, now_s: u64) -> Option<Reply> {
    let body = match api {
        ClientApi::OpenAiModels => openai_models(&visible_models(key, router), now_s),
        ClientApi::OllamaTags => ollama_tags(&visible_models(key, router), now_s),
        ClientApi::OllamaVersion => br#"{"version":"0.6.0"}"#.to_vec(),
        _ => return None,
    };
    Some(ok_json(body))
}

/// Ollama's `POST /api/show` for the model the body names (`model`, or the older `name`).
pub fn show(body: &[u8], key: &ClientKey, router: &Router) -> Result<Reply, ErrorInfo> {
    let model = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("model")
                .or_else(|| v.get("name"))
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .ok_or_else(|| ErrorInfo::invalid("model", "`model` is required"))?;
    if router.find(&model).is_none() || !key.may_use(&model) {
        return Err(not_found(&model));
    }
    Ok(ok_json(ollama_show(&model)))
}

/// The routes a key may use, by name; glob routes name no model and are not listed.
fn visible_models(key: &ClientKey, router: &Router) -> Vec<String> {
    router
        .routes()
        .iter()
        .filter(|r| !r.is_glob())
        .filter(|r| key.may_use(&r.name))
        .map(|r| r.name.clone())
        .collect()
}

/// OpenAI's `list` of `model` objects.
fn openai_models(names: &[String], now_s: u64) -> Vec<u8> {
    let data: Vec<_> = names
        .iter()
        .map(|n| json!({"id": n, "object": "model", "created": now_s, "owned_by": "weir"}))
        .collect();
    json!({"object": "list", "data": data})
        .to_string()
        .into_bytes()
}

/// Ollama's `/api/tags`: the fields the `ollama` client's `ListResponse` reads.
fn ollama_tags(names: &[String], now_s: u64) -> Vec<u8> {
    let at = crate::time::rfc3339(now_s);
    let models: Vec<_> = names
        .iter()
        .map(|n| {
            json!({
                "name": n, "model": n, "modified_at": at, "size": 0,
                "digest": crate::auth::sha256_hex(n),
                "details": {"format": "", "family": "", "families": null,
                            "parameter_size": "", "quantization_level": ""}
            })
        })
        .collect();
    json!({"models": models}).to_string().into_bytes()
}

/// Ollama's `/api/show`: weir knows no weights or templates, only that the model is served.
fn ollama_show(name: &str) -> Vec<u8> {
    json!({
        "modelfile": "", "parameters": "", "template": "",
        "details": {"format": "", "family": "", "families": null,
                    "parameter_size": "", "quantization_level": ""},
        "model_info": {"general.basename": name},
        "capabilities": ["completion", "tools"]
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_as_the_clients_expect() {
        let v: serde_json::Value =
            serde_json::from_slice(&openai_models(&["a".into(), "b".into()], 5)).unwrap();
        assert_eq!(v["data"][1]["id"], "b");
        let v: serde_json::Value = serde_json::from_slice(&ollama_tags(&["m".into()], 0)).unwrap();
        assert_eq!(v["models"][0]["model"], "m");
        assert_eq!(v["models"][0]["modified_at"], "1970-01-01T00:00:00Z");
    }
}
