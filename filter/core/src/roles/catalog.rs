//! The model lists clients ask the gateway itself for: OpenAI `GET /v1/models`, Ollama
//! `GET /api/tags` and `POST /api/show`. Only models the caller's key may use are ever listed.

use serde_json::json;

/// OpenAI's `list` of `model` objects.
pub fn openai_models(names: &[String], now_s: u64) -> Vec<u8> {
    let data: Vec<_> = names
        .iter()
        .map(|n| json!({"id": n, "object": "model", "created": now_s, "owned_by": "weir"}))
        .collect();
    json!({"object": "list", "data": data})
        .to_string()
        .into_bytes()
}

/// Ollama's `/api/tags`: the fields the `ollama` client's `ListResponse` reads.
pub fn ollama_tags(names: &[String], now_s: u64) -> Vec<u8> {
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
pub fn ollama_show(name: &str) -> Vec<u8> {
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
