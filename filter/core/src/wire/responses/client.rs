//! The client side: Responses API requests into IR (and how their extras travel to other
//! targets), IR answers back into `response` objects, and the stored-response operations' paths.
//!
//! Strictness follows OpenAI's: an unknown top-level parameter is a 400 naming it. Inside items,
//! fields an SDK echoes back from earlier output (`id`, `status`, `annotations`, `phase`, ...) are
//! accepted and not carried. What only the Responses API has (built-in tools, their calls'
//! items, `item_reference`) is carried verbatim (`extra`, [`Part::Native`]) and refused by
//! [`portable`] for every other target.

use serde_json::{Map, Value};

use super::{pack_reasoning, reasoning_text, response_id, unpack_reasoning, write_usage};
use crate::ir::*;
use crate::wire::json::{
    as_obj, as_str, must_be, not_supported, parameters_schema, parse_object, required, Json,
    JsonWriter, Obj, Path, R,
};
use crate::wire::{openai, ProviderKind, WireError};

/// How a field the IR cannot carry (kept in `extra`) reaches targets other than Responses
/// providers, which take every one verbatim.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// The client's own spelling of something the IR also carries: other targets use the IR's.
    Mirror,
    /// Advice that cannot change the answer; OpenAI Chat Completions targets take it under the
    /// same name when `chat`, other targets drop it.
    Hint { chat: bool },
    /// State the provider keeps: only an `openai-responses` provider can serve it.
    State,
    /// A behaviour only the Responses API has.
    Feature,
}

/// Every top-level field the decoder accepts without mapping it entirely to the IR.
const NATIVE: &[(&str, Policy)] = &[
    ("access_programs", Policy::Feature),
    ("context_management", Policy::Feature),
    ("conversation", Policy::State),
    ("image", Policy::Hint { chat: false }),
    ("include", Policy::Hint { chat: false }),
    ("max_tool_calls", Policy::Hint { chat: false }),
    ("metadata", Policy::Hint { chat: true }),
    ("moderation", Policy::Feature),
    ("previous_response_id", Policy::State),
    ("prompt", Policy::State),
    ("prompt_cache_key", Policy::Hint { chat: true }),
    ("prompt_cache_options", Policy::Hint { chat: false }),
    ("prompt_cache_retention", Policy::Hint { chat: true }),
    ("reasoning", Policy::Mirror),
    ("safety_identifier", Policy::Hint { chat: true }),
    ("service_tier", Policy::Hint { chat: true }),
    ("store", Policy::State),
    ("text", Policy::Mirror),
    ("tool_choice", Policy::Mirror),
    ("tools", Policy::Mirror),
    ("truncation", Policy::Feature),
];

/// Fields read into the IR, or checked and found to need nothing.
const OWN: &[&str] = &[
    "background",
    "background_options",
    "input",
    "instructions",
    "max_output_tokens",
    "model",
    "parallel_tool_calls",
    "stream",
    "stream_options",
    "temperature",
    "top_logprobs",
    "top_p",
    "user",
];

fn policy(name: &str) -> Option<Policy> {
    NATIVE.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, WireError> {
    let map = parse_object(body, "the body")?;
    let o = Obj::root(&map);
    let mut req = ChatRequest::default();
    for (name, value) in map.iter() {
        if value.is_null() || OWN.contains(&name) {
            continue;
        }
        if policy(name).is_none() {
            return Err(WireError::invalid(
                name,
                format!("Unrecognized request argument supplied: {name}"),
            ));
        }
        // Defaults that ask for nothing weir does not already do stay out of `extra`, so they
        // reach every target: `store: false` (weir stores nothing), `truncation: disabled`.
        let default = match name {
            "store" => value.as_bool() == Some(false),
            "truncation" => value.as_str() == Some("disabled"),
            "include" => value.as_array().is_some_and(<[_]>::is_empty),
            _ => false,
        };
        if !default {
            req.extra.insert(name.to_string(), value.to_value());
        }
    }
    // Set even without extras: a Responses provider reads it as "the client speaks Responses"
    // and leaves what the client left out (`store`) to the API's defaults.
    req.extra_family = Some(Family::OpenAiResponses);

    req.model = o.req_str("model")?.to_string();
    if req.model.is_empty() {
        return Err(must_be("model", "a non-empty string"));
    }
    if o.bool("background")? == Some(true) {
        return Err(not_supported_because(
            "background",
            "background responses are stored by the provider and polled; weir relays the \
             answer to the request that asked for it",
        ));
    }
    if o.get("background_options").is_some() {
        return Err(not_supported("background_options"));
    }
    if o.get("top_logprobs").is_some() {
        return Err(not_supported("top_logprobs"));
    }
    o.bool("store")?;
    if let Some(t) = o.str("truncation")? {
        if !matches!(t, "auto" | "disabled") {
            return Err(must_be("truncation", "`auto` or `disabled`"));
        }
    }
    check_include(&o)?;

    if let Some(text) = o.str("instructions")? {
        if !text.is_empty() {
            req.messages.push(Message::text(Role::System, text));
        }
    }
    let input = o.req("input")?;
    decode_input(input, o.path("input"), &mut req.messages)?;
    if req.messages.is_empty() {
        return Err(must_be("input", "a non-empty string or array of items"));
    }

    if let Some(tools) = o.arr("tools")? {
        let path = o.path("tools");
        for (i, t) in tools.iter().enumerate() {
            req.tools.extend(decode_tool(t, path.index(i))?);
        }
    }
    if let Some(choice) = o.get("tool_choice") {
        req.tool_choice = Some(decode_tool_choice(
            choice,
            o.path("tool_choice"),
            &mut req.tools,
        )?);
    }
    req.parallel_tool_calls = o.bool("parallel_tool_calls")?;
    if let Some(text) = o.obj("text")? {
        text.reject_unknown(&["format", "verbosity"])?;
        if let Some(v) = text.str("verbosity")? {
            if !matches!(v, "low" | "medium" | "high") {
                return Err(must_be(text.path("verbosity"), "`low`, `medium` or `high`"));
            }
        }
        req.response_format = text
            .obj("format")?
            .map(|f| openai::decode_response_format(f, true))
            .transpose()?;
    }
    if let Some(r) = o.obj("reasoning")? {
        req.reasoning = decode_reasoning(&r)?;
    }
    req.max_tokens = o.u32("max_output_tokens")?;
    req.temperature = o.f64("temperature")?;
    req.top_p = o.f64("top_p")?;
    req.user = o.string("user")?;
    req.stream = o.bool("stream")?.unwrap_or(false);
    if let Some(opts) = o.obj("stream_options")? {
        opts.reject_unknown(&["include_obfuscation"])?;
        // Obfuscation pads deltas against length side channels on the provider's link; weir
        // writes its own events and adds none.
        opts.bool("include_obfuscation")?;
    }
    // Usage is part of `response.completed`, always.
    req.stream_include_usage = true;
    Ok(req)
}

fn not_supported_because(field: &str, why: &str) -> WireError {
    WireError::invalid(
        field,
        format!("`{field}` is not supported by this gateway: {why}"),
    )
}

/// Known `include` values; logprobs are refused, since the IR carries none back.
fn check_include(o: &Obj<'_, '_>) -> R<()> {
    const KNOWN: &[&str] = &[
        "file_search_call.results",
        "web_search_call.results",
        "web_search_call.action.sources",
        "message.input_image.image_url",
        "computer_call_output.output.image_url",
        "code_interpreter_call.outputs",
        "reasoning.encrypted_content",
        "message.output_text.logprobs",
    ];
    let Some(items) = o.arr("include")? else {
        return Ok(());
    };
    let path = o.path("include");
    for (i, v) in items.iter().enumerate() {
        let at = path.index(i);
        match as_str(v, at)? {
            "message.output_text.logprobs" => return Err(not_supported(at)),
            s if KNOWN.contains(&s) => {}
            other => {
                return Err(WireError::invalid(
                    at,
                    format!("`{at}`: unknown include value `{other}`"),
                ))
            }
        }
    }
    Ok(())
}

// --- input ----------------------------------------------------------------------------------

fn decode_input(v: &Json<'_>, path: Path<'_>, out: &mut Vec<Message>) -> R<()> {
    match v {
        Json::Str(s) => {
            out.push(Message::text(Role::User, s.as_ref()));
            Ok(())
        }
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                decode_item(item, path.index(i), out)?;
            }
            Ok(())
        }
        _ => Err(must_be(path, "a string or an array of input items")),
    }
}

/// Adds to the assistant turn an assistant item continues: the last turn when it is the
/// assistant's and `fits`, else a new one.
fn to_assistant(
    out: &mut Vec<Message>,
    fits: impl Fn(&Message) -> bool,
    add: impl FnOnce(&mut Message),
) {
    if let Some(m) = out
        .last_mut()
        .filter(|m| m.role == Role::Assistant && fits(m))
    {
        add(m);
        return;
    }
    let mut m = Message::new(Role::Assistant);
    add(&mut m);
    out.push(m);
}

/// Whether a turn holds only reasoning and built-in tools' items so far, so text or reasoning
/// may still join it (what follows text or calls is the next turn).
fn opens(m: &Message) -> bool {
    m.content
        .iter()
        .all(|p| matches!(p, Part::Reasoning { .. } | Part::Native { .. }))
        && m.refusal.is_none()
        && m.tool_calls.is_empty()
}

fn decode_item(v: &Json<'_>, path: Path<'_>, out: &mut Vec<Message>) -> R<()> {
    let o = as_obj(v, path)?;
    let kind = match o.str("type")? {
        Some(t) => t,
        None if o.get("role").is_some() => "message",
        None => return Err(required(o.path("type"))),
    };
    match kind {
        "message" => decode_message(&o, out),
        "function_call" => {
            if o.get("namespace").is_some() {
                return Err(not_supported(o.path("namespace")));
            }
            check_caller(&o)?;
            let call = ToolCall {
                id: o.req_str("call_id")?.to_string(),
                name: o.req_str("name")?.to_string(),
                arguments: o.req_str("arguments")?.to_string(),
            };
            to_assistant(out, |_| true, |m| m.tool_calls.push(call));
            Ok(())
        }
        "function_call_output" => {
            check_caller(&o)?;
            let content = match o.req("output")? {
                Json::Str(s) => text_parts(s),
                Json::Array(parts) => {
                    let base = o.path("output");
                    parts
                        .iter()
                        .enumerate()
                        .map(|(i, p)| decode_part(p, base.index(i), Role::Tool))
                        .collect::<R<_>>()?
                }
                _ => return Err(must_be(o.path("output"), "a string or an array of parts")),
            };
            out.push(Message {
                content,
                tool_call_id: Some(o.req_str("call_id")?.to_string()),
                name: o.string("name")?,
                ..Message::new(Role::Tool)
            });
            Ok(())
        }
        "reasoning" => {
            let part = decode_reasoning_item(&o)?;
            // Reasoning opens a turn: it comes before the text and calls it led to.
            to_assistant(out, opens, |m| m.content.push(part));
            Ok(())
        }
        // Built-in tools' calls and outputs (`web_search_call`, `computer_call_output`, ...)
        // and `item_reference`: the Responses API's own, verbatim and in place, for a Responses
        // provider only (`portable` refuses them elsewhere). They join the assistant turn unless
        // function calls already closed it, so their order among the turn's items holds.
        _ => {
            let item = Part::Native {
                origin: Origin::OpenAiResponses,
                item: v.to_value(),
            };
            to_assistant(
                out,
                |m| m.tool_calls.is_empty() && m.refusal.is_none(),
                |m| m.content.push(item),
            );
            Ok(())
        }
    }
}

/// Programmatic tool calling has no IR form; a `direct` caller is the ordinary one.
fn check_caller(o: &Obj<'_, '_>) -> R<()> {
    if let Some(caller) = o.obj("caller")? {
        if caller.req_str("type")? != "direct" {
            return Err(not_supported(caller.path("type")));
        }
    }
    Ok(())
}

fn decode_message(o: &Obj<'_, '_>, out: &mut Vec<Message>) -> R<()> {
    let role = match o.req_str("role")? {
        "user" => Role::User,
        "system" => Role::System,
        "developer" => Role::Developer,
        "assistant" => Role::Assistant,
        other => {
            return Err(WireError::invalid(
                o.path("role"),
                format!("unknown role `{other}`"),
            ))
        }
    };
    let content = o.req("content")?;
    let path = o.path("content");
    let mut parts = Vec::new();
    let mut refusal: Option<String> = None;
    match content {
        Json::Str(s) => parts = text_parts(s),
        Json::Array(items) => {
            for (i, p) in items.iter().enumerate() {
                let at = path.index(i);
                let po = as_obj(p, at)?;
                if role == Role::Assistant && po.str("type")? == Some("refusal") {
                    let text = po.req_str("refusal")?;
                    refusal.get_or_insert_with(String::new).push_str(text);
                } else {
                    parts.push(decode_part(p, at, role)?);
                }
            }
        }
        _ => return Err(must_be(path, "a string or an array of content parts")),
    }
    if role == Role::Assistant {
        to_assistant(out, opens, |m| {
            m.content.extend(parts);
            if let Some(r) = refusal {
                m.refusal.get_or_insert_with(String::new).push_str(&r);
            }
        });
        return Ok(());
    }
    out.push(Message {
        content: parts,
        ..Message::new(role)
    });
    Ok(())
}

fn text_parts(s: &str) -> Vec<Part> {
    if s.is_empty() {
        Vec::new()
    } else {
        vec![Part::Text {
            text: s.to_string(),
        }]
    }
}

/// One content part. Assistant turns carry `output_text` (and `input_text`, which SDKs also
/// send); images and files only come from the user or as tool output.
fn decode_part(v: &Json<'_>, path: Path<'_>, role: Role) -> R<Part> {
    let o = as_obj(v, path)?;
    let media = matches!(role, Role::User | Role::Tool);
    match o.req_str("type")? {
        "input_text" => Ok(Part::Text {
            text: o.req_str("text")?.to_string(),
        }),
        "output_text" if role == Role::Assistant => Ok(Part::Text {
            text: o.req_str("text")?.to_string(),
        }),
        "input_image" if media => {
            if o.get("file_id").is_some() {
                return Err(file_reference(o.path("file_id")));
            }
            if let Some(detail) = o.str("detail")? {
                if !matches!(detail, "auto" | "low" | "high" | "original") {
                    return Err(must_be(
                        o.path("detail"),
                        "`auto`, `low`, `high` or `original`",
                    ));
                }
            }
            Ok(Part::Image {
                source: Media::from_url(o.req_str("image_url")?),
            })
        }
        "input_file" if media => {
            if o.get("file_id").is_some() {
                return Err(file_reference(o.path("file_id")));
            }
            let source = match (o.str("file_data")?, o.str("file_url")?) {
                (Some(data), _) if data.starts_with("data:") => Media::from_url(data),
                // Bare base64, as older examples send: file inputs are PDFs.
                (Some(data), _) => Media::Base64 {
                    media_type: "application/pdf".into(),
                    data: data.to_string(),
                },
                (None, Some(url)) => Media::Url {
                    url: url.to_string(),
                },
                (None, None) => return Err(required(o.path("file_data"))),
            };
            Ok(Part::Document {
                source,
                title: o.string("filename")?,
            })
        }
        "input_audio" => Err(not_supported(o.path("type"))),
        other => Err(WireError::invalid(
            o.path("type"),
            format!("content part type `{other}` is not allowed here"),
        )),
    }
}

fn file_reference(field: Path<'_>) -> WireError {
    not_supported_because(
        &field.to_string(),
        "files uploaded to a provider are not visible to the others; send `file_data` or \
         `image_url`",
    )
}

fn decode_reasoning_item(o: &Obj<'_, '_>) -> R<Part> {
    let text = reasoning_text(o)?;
    let (payload, id) = match o.str("encrypted_content")? {
        Some(enc) => {
            let payload = unpack_reasoning(enc).ok_or_else(|| {
                must_be(
                    o.path("encrypted_content"),
                    "the reasoning payload an answer carried, unchanged",
                )
            })?;
            // weir made up the ids of reasoning it packed; only OpenAI's own mean anything.
            let id = match payload.origin {
                Origin::OpenAiResponses => o.string("id")?,
                _ => None,
            };
            (Some(payload), id)
        }
        None => (None, o.string("id")?.filter(|id| id.starts_with("rs_"))),
    };
    let origin = match &payload {
        Some(p) => Some(p.origin),
        // An id without a payload is OpenAI's (a stored reasoning item).
        None => id.as_ref().map(|_| Origin::OpenAiResponses),
    };
    Ok(Part::Reasoning {
        text,
        signature: payload.as_ref().and_then(|p| p.signature.clone()),
        redacted: payload.and_then(|p| p.redacted),
        id,
        origin,
    })
}

// --- tools, formats, reasoning ---------------------------------------------------------------

/// A function tool; `None` for a built-in one (`web_search`, `mcp`, ...), which travels only in
/// the verbatim `tools` (see [`native_tool`]).
fn decode_tool(v: &Json<'_>, path: Path<'_>) -> R<Option<Tool>> {
    let o = as_obj(v, path)?;
    if o.req_str("type")? != "function" {
        return Ok(None);
    }
    for field in ["defer_loading", "allowed_callers", "output_schema"] {
        if o.get(field).is_some() && o.bool(field).ok() != Some(Some(false)) {
            return Err(not_supported(o.path(field)));
        }
    }
    Ok(Some(Tool {
        name: o.req_str("name")?.to_string(),
        description: o.string("description")?,
        parameters: parameters_schema(&o)?,
        strict: o.bool("strict")?,
    }))
}

/// `tool_choice`; `allowed_tools` narrows `tools` to the allowed functions. Choosing a built-in
/// tool is `auto` in the IR: only a Responses provider can serve it, and it gets the client's
/// own `tool_choice` (other targets refuse it, [`native_tool`]).
fn decode_tool_choice(v: &Json<'_>, path: Path<'_>, tools: &mut Vec<Tool>) -> R<ToolChoice> {
    if let Json::Str(s) = v {
        return match s.as_ref() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            _ => Err(must_be(path, "`auto`, `none`, `required` or a tool choice")),
        };
    }
    let o = as_obj(v, path)?;
    match o.req_str("type")? {
        "function" => Ok(ToolChoice::Tool(o.req_str("name")?.to_string())),
        "allowed_tools" => {
            let allowed = o.arr("tools")?.ok_or_else(|| required(o.path("tools")))?;
            let base = o.path("tools");
            let mut names = Vec::new();
            for (i, t) in allowed.iter().enumerate() {
                let t = as_obj(t, base.index(i))?;
                if t.req_str("type")? == "function" {
                    names.push(t.req_str("name")?.to_string());
                }
            }
            tools.retain(|t| names.contains(&t.name));
            match o.req_str("mode")? {
                "auto" => Ok(ToolChoice::Auto),
                "required" => Ok(ToolChoice::Required),
                _ => Err(must_be(o.path("mode"), "`auto` or `required`")),
            }
        }
        _ => Ok(ToolChoice::Auto),
    }
}

fn decode_reasoning(o: &Obj<'_, '_>) -> R<Option<Reasoning>> {
    o.reject_unknown(&["effort", "summary", "generate_summary", "context", "mode"])?;
    let mut r = Reasoning::default();
    r.effort = match o.str("effort")? {
        None => None,
        Some("none") => {
            r.enabled = Some(false);
            None
        }
        Some("minimal") => Some(Effort::Minimal),
        Some("low") => Some(Effort::Low),
        Some("medium") => Some(Effort::Medium),
        Some("high") => Some(Effort::High),
        Some("xhigh") => Some(Effort::Xhigh),
        Some("max") => Some(Effort::Max),
        Some(_) => {
            return Err(must_be(
                o.path("effort"),
                "`none`, `minimal`, `low`, `medium`, `high`, `xhigh` or `max`",
            ))
        }
    };
    // `generate_summary` is the deprecated spelling of `summary`.
    let summary = match o.str("summary")? {
        Some(s) => Some(s),
        None => o.str("generate_summary")?,
    };
    if let Some(s) = summary {
        if !matches!(s, "auto" | "concise" | "detailed") {
            return Err(must_be(
                o.path("summary"),
                "`auto`, `concise` or `detailed`",
            ));
        }
        r.summary = Some(s.to_string());
    }
    o.str("context")?;
    o.str("mode")?;
    Ok((r != Reasoning::default()).then_some(r))
}

// --- other targets ----------------------------------------------------------------------------

/// The request as a target other than an `openai-responses` provider must see it: extras that
/// only mirror the IR or only advise are dropped (OpenAI Chat Completions targets keep those it
/// has too), and state or Responses-only behaviour (built-in tools, their items in `input`) is
/// refused with a 400 naming it.
pub fn portable(c: &ChatRequest, kind: ProviderKind) -> Result<ChatRequest, WireError> {
    let chat = matches!(kind, ProviderKind::OpenAi | ProviderKind::AzureOpenAi);
    let target = kind.name();
    let mut extra = Map::new();
    for (name, value) in &c.extra {
        match policy(name) {
            Some(Policy::Mirror) => {
                if name == "reasoning" {
                    check_reasoning_mode(value, target)?;
                }
                if let Some((at, tool)) = native_tool(name, value) {
                    return Err(built_in(&at, &tool, target));
                }
                if name == "text" && chat {
                    if let Some(v) = value.get("verbosity").filter(|v| !v.is_null()) {
                        extra.insert("verbosity".to_string(), v.clone());
                    }
                }
            }
            Some(Policy::Hint { chat: true }) if chat => {
                extra.insert(name.clone(), value.clone());
            }
            Some(Policy::Hint { .. }) => {}
            Some(Policy::State) => return Err(stateless(name, target)),
            Some(Policy::Feature) | None => {
                return Err(WireError::unsupported(name.clone(), target))
            }
        }
    }
    if let Some(item) = native_item(c) {
        return Err(native_input(item, target));
    }
    let mut out = c.clone();
    out.extra_family = (!extra.is_empty()).then_some(Family::OpenAi);
    out.extra = extra;
    Ok(out)
}

/// Whether a request holds something only a Responses provider can serve, besides its extras:
/// then it needs [`portable`] even with no extras.
pub fn holds_native(c: &ChatRequest) -> bool {
    native_item(c).is_some()
}

/// The first built-in tool's item in the conversation (its JSON, as the client sent it).
fn native_item(c: &ChatRequest) -> Option<&Value> {
    c.messages
        .iter()
        .flat_map(|m| &m.content)
        .find_map(|p| match p {
            Part::Native { item, .. } => Some(item),
            _ => None,
        })
}

/// The first built-in tool a `tools` or `tool_choice` value names, as its path and type.
fn native_tool(name: &str, value: &Value) -> Option<(String, String)> {
    let kind = |v: &Value| {
        v.get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let first = |list: &Value, at: &str| {
        list.as_array()?.iter().enumerate().find_map(|(i, t)| {
            let k = kind(t);
            (k != "function").then(|| (format!("{at}[{i}].type"), k))
        })
    };
    match name {
        "tools" => first(value, "tools"),
        "tool_choice" if value.is_object() => match kind(value).as_str() {
            "function" => None,
            "allowed_tools" => first(value.get("tools")?, "tool_choice.tools"),
            other => Some(("tool_choice.type".to_string(), other.to_string())),
        },
        _ => None,
    }
}

/// The 400 for a built-in tool another target cannot run.
fn built_in(at: &str, tool: &str, target: &str) -> WireError {
    WireError::invalid(
        at,
        format!(
            "`{at}`: the built-in tool `{tool}` runs at OpenAI and only an openai-responses \
             provider can serve it; the {target} provider serving this model cannot: use a \
             model served by the Responses API, or a function tool the client runs"
        ),
    )
}

/// The 400 for a built-in tool's item (or a stored item's reference) in `input`.
fn native_input(item: &Value, target: &str) -> WireError {
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == "item_reference" {
        return WireError::invalid(
            "input",
            format!(
                "`input` holds an `item_reference`, which only the openai-responses provider \
                 that stored the item can resolve; the {target} provider serving this model \
                 keeps none (weir itself is stateless): send the item itself"
            ),
        );
    }
    WireError::invalid(
        "input",
        format!(
            "`input` holds a `{kind}` item, which only an openai-responses provider takes (the \
             calls and outputs of built-in tools); the {target} provider serving this model \
             cannot: send messages, function calls and their outputs only"
        ),
    )
}

/// OpenAI's `pro` reasoning mode has no equivalent elsewhere.
fn check_reasoning_mode(reasoning: &Value, target: &'static str) -> R<()> {
    match reasoning.get("mode").and_then(Value::as_str) {
        None | Some("standard") => Ok(()),
        Some(_) => Err(WireError::unsupported("reasoning.mode", target)),
    }
}

/// The 400 for state a stateless gateway cannot hold, naming what to send instead.
fn stateless(field: &str, target: &str) -> WireError {
    WireError::invalid(
        field,
        format!(
            "`{field}` needs state the provider keeps, and the {target} provider serving this \
             model keeps none (weir itself is stateless): send the whole conversation in \
             `input`, with `store: false`, as Codex-style clients do"
        ),
    )
}

// --- answers --------------------------------------------------------------------------------

/// One output item of an answer.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum OutItem {
    Reasoning {
        id: String,
        text: String,
        encrypted: Option<String>,
    },
    Message {
        id: String,
        text: String,
        refusal: Option<String>,
        /// The text's annotations (`url_citation`, ...), as the provider wrote them.
        annotations: Vec<Value>,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
    /// A built-in tool's item (`web_search_call`, ...), verbatim from a Responses provider.
    Native(Value),
}

/// `status` of an item: `in_progress` while streaming, then as the response ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ItemStatus {
    InProgress,
    Completed,
    Incomplete,
}

impl ItemStatus {
    fn name(self) -> &'static str {
        match self {
            ItemStatus::InProgress => "in_progress",
            ItemStatus::Completed => "completed",
            ItemStatus::Incomplete => "incomplete",
        }
    }
}

impl OutItem {
    /// The item as `response.output` and `response.output_item.*` carry it.
    pub(super) fn write(&self, w: &mut JsonWriter, status: ItemStatus) {
        if let OutItem::Native(item) = self {
            w.value(item);
            return;
        }
        w.begin_object();
        match self {
            OutItem::Reasoning {
                id,
                text,
                encrypted,
            } => {
                w.key("id").str(id);
                w.key("type").str("reasoning");
                w.key("summary").begin_array();
                if !text.is_empty() {
                    write_summary_part(w, text);
                }
                w.end_array();
                if let Some(e) = encrypted {
                    w.key("encrypted_content").str(e);
                }
            }
            OutItem::Message {
                id,
                text,
                refusal,
                annotations,
            } => {
                w.key("id").str(id);
                w.key("type").str("message");
                w.key("status").str(status.name());
                w.key("role").str("assistant");
                w.key("content").begin_array();
                if !text.is_empty() || refusal.is_none() {
                    write_text_part(w, text, annotations);
                }
                if let Some(r) = refusal {
                    write_refusal_part(w, r);
                }
                w.end_array();
            }
            OutItem::Call {
                id,
                call_id,
                name,
                arguments,
            } => {
                w.key("id").str(id);
                w.key("type").str("function_call");
                w.key("status").str(status.name());
                w.key("call_id").str(call_id);
                w.key("name").str(name);
                w.key("arguments").str(arguments);
            }
            // Written whole before the match.
            OutItem::Native(_) => {}
        }
        w.end_object();
    }

    /// About how many bytes the item holds, for sizing buffers and bounding streams.
    pub(super) fn size(&self) -> usize {
        match self {
            OutItem::Reasoning { text, .. } => text.len(),
            OutItem::Message {
                text, annotations, ..
            } => text.len() + annotations.iter().map(json_size).sum::<usize>(),
            OutItem::Call { arguments, .. } => arguments.len(),
            OutItem::Native(item) => json_size(item),
        }
    }
}

pub(super) fn json_size(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(0, |b| b.len())
}

pub(super) fn write_text_part(w: &mut JsonWriter, text: &str, annotations: &[Value]) {
    w.begin_object();
    w.key("type").str("output_text");
    w.key("text").str(text);
    w.key("annotations").begin_array();
    for a in annotations {
        w.value(a);
    }
    w.end_array();
    w.key("logprobs").begin_array().end_array();
    w.end_object();
}

pub(super) fn write_refusal_part(w: &mut JsonWriter, refusal: &str) {
    w.begin_object();
    w.key("type").str("refusal");
    w.key("refusal").str(refusal);
    w.end_object();
}

pub(super) fn write_summary_part(w: &mut JsonWriter, text: &str) {
    w.begin_object();
    w.key("type").str("summary_text");
    w.key("text").str(text);
    w.end_object();
}

/// The output items of a complete answer (its first choice: the Responses API has no `n`), in
/// the answer's order: reasoning, built-in tools' items and text as they came, a message per run
/// of text (with the provider's id and annotations when a Responses provider gave them), then
/// function calls.
fn items(r: &ChatResponse, rid: &str) -> Vec<OutItem> {
    let mut out = Vec::new();
    let Some(c) = r.choices.iter().find(|c| c.index == 0) else {
        return out;
    };
    let id = |prefix: &str, n: usize| super::item_id(prefix, rid, n);
    // The message being filled, by its position in `out`.
    let mut open: Option<usize> = None;
    let mut meta: Option<(String, Vec<Value>)> = None;
    for p in &c.message.content {
        match p {
            Part::Reasoning {
                text,
                signature,
                redacted,
                id: own,
                origin,
            } => {
                let payload = pack_reasoning(*origin, signature.as_deref(), redacted.as_deref());
                let own = own
                    .clone()
                    .filter(|_| *origin == Some(Origin::OpenAiResponses));
                open = None;
                out.push(OutItem::Reasoning {
                    id: own.unwrap_or_else(|| id("rs", out.len())),
                    text: text.clone(),
                    encrypted: payload,
                });
            }
            Part::Native {
                origin: Origin::OpenAiResponses,
                item,
            } => {
                open = None;
                match super::message_meta(item) {
                    Some(m) => meta = Some(m),
                    None => out.push(OutItem::Native(item.clone())),
                }
            }
            Part::Text { text } => {
                let position = match open {
                    Some(position) => position,
                    None => {
                        let (own, annotations) = meta.take().unwrap_or_default();
                        let own = Some(own).filter(|o| !o.is_empty());
                        out.push(OutItem::Message {
                            id: own.unwrap_or_else(|| id("msg", out.len())),
                            text: String::new(),
                            refusal: None,
                            annotations,
                        });
                        open = Some(out.len() - 1);
                        out.len() - 1
                    }
                };
                if let Some(OutItem::Message { text: t, .. }) = out.get_mut(position) {
                    t.push_str(text);
                }
            }
            Part::Native { .. } | Part::Image { .. } | Part::Document { .. } => {}
        }
    }
    let has_message = out.iter().any(|i| matches!(i, OutItem::Message { .. }));
    let has_native = out.iter().any(|i| matches!(i, OutItem::Native(_)));
    if let Some(refusal) = &c.message.refusal {
        match out.iter_mut().rev().find_map(|i| match i {
            OutItem::Message { refusal, .. } => Some(refusal),
            _ => None,
        }) {
            Some(slot) => *slot = Some(refusal.clone()),
            None => out.push(OutItem::Message {
                id: id("msg", out.len()),
                text: String::new(),
                refusal: Some(refusal.clone()),
                annotations: Vec::new(),
            }),
        }
    } else if !has_message && !has_native && c.message.tool_calls.is_empty() {
        out.push(OutItem::Message {
            id: id("msg", out.len()),
            text: String::new(),
            refusal: None,
            annotations: Vec::new(),
        });
    }
    for call in &c.message.tool_calls {
        out.push(OutItem::Call {
            id: id("fc", out.len()),
            call_id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        });
    }
    out
}

/// How a response ended, for its `status`, `incomplete_details` and `error`.
#[derive(Clone, Copy)]
pub(super) enum Outcome<'a> {
    InProgress,
    Done(FinishReason),
    Failed(&'a ErrorInfo),
}

/// Everything a `response` object says besides its output.
pub(super) struct Head<'a> {
    pub id: &'a str,
    pub created: u64,
    pub model: &'a str,
}

/// The `response` object: the answer so far, with the request's settings (`echo`) repeated as
/// the API does.
pub(super) fn write_response(
    w: &mut JsonWriter,
    echo: &str,
    head: &Head<'_>,
    outcome: Outcome<'_>,
    output: &[OutItem],
    usage: Option<&Usage>,
) {
    let incomplete = match outcome {
        Outcome::Done(r) => super::incomplete_reason(r),
        _ => None,
    };
    let (status, item_status) = match outcome {
        Outcome::InProgress => ("in_progress", ItemStatus::Completed),
        Outcome::Done(_) if incomplete.is_some() => ("incomplete", ItemStatus::Incomplete),
        Outcome::Done(_) => ("completed", ItemStatus::Completed),
        Outcome::Failed(_) => ("failed", ItemStatus::Incomplete),
    };
    w.begin_object();
    w.key("id").str(head.id);
    w.key("object").str("response");
    w.key("created_at").u64(head.created);
    w.key("status").str(status);
    w.key("background").bool(false);
    w.key("error");
    if let Outcome::Failed(e) = outcome {
        let code = match e.kind {
            ErrorKind::RateLimited => "rate_limit_exceeded",
            _ => "server_error",
        };
        w.begin_object();
        w.key("code").str(code);
        w.key("message").str(&e.message).end_object();
    } else {
        w.null();
    }
    w.key("incomplete_details");
    match incomplete {
        Some(reason) => w.begin_object().key("reason").str(reason).end_object(),
        None => w.null(),
    };
    w.key("model").str(head.model);
    w.key("output").begin_array();
    for item in output {
        item.write(w, item_status);
    }
    w.end_array();
    w.key("usage");
    match usage {
        Some(u) => write_usage(w, u),
        None => {
            w.null();
        }
    }
    w.members(echo);
    w.end_object();
}

/// The request settings a `response` repeats, rendered once as object members: the client's
/// own spelling where it gave one. `instructions` is `null`: the IR keeps them as the
/// conversation's first turn, already scrubbed of PII.
pub(super) fn echo(req: &ChatRequest) -> String {
    let extra = |name: &str| req.extra.get(name).filter(|v| !v.is_null());
    let mut w = JsonWriter::with_capacity(256 + req.tools.len() * 256);
    w.begin_object();
    w.key("instructions").null();
    w.key("max_output_tokens");
    match req.max_tokens {
        Some(n) => w.u64(n.into()),
        None => w.null(),
    };
    w.key("parallel_tool_calls")
        .bool(req.parallel_tool_calls.unwrap_or(true));
    w.key("temperature");
    opt_f64(&mut w, req.temperature);
    w.key("top_p");
    opt_f64(&mut w, req.top_p);
    w.key("user").opt_str(req.user.as_deref());
    for name in [
        "max_tool_calls",
        "previous_response_id",
        "prompt_cache_key",
        "safety_identifier",
        "service_tier",
    ] {
        if let Some(v) = extra(name) {
            w.key(name).value(v);
        }
    }
    w.key("metadata");
    match extra("metadata") {
        Some(v) => w.value(v),
        None => w.begin_object().end_object(),
    };
    w.key("reasoning");
    if let Some(v) = extra("reasoning") {
        w.value(v);
    } else {
        let r = req.reasoning.as_ref();
        w.begin_object();
        w.key("effort").opt_str(r.and_then(super::effort_name));
        w.key("summary")
            .opt_str(r.and_then(|r| r.summary.as_deref()));
        w.end_object();
    }
    w.key("text");
    match extra("text") {
        Some(v) => w.value(v),
        None => {
            w.begin_object().key("format").begin_object();
            w.key("type").str("text").end_object().end_object()
        }
    };
    w.key("tool_choice");
    if let Some(v) = extra("tool_choice") {
        w.value(v);
    } else {
        super::provider::write_tool_choice(&mut w, req.tool_choice.as_ref());
    }
    w.key("tools");
    if let Some(v) = extra("tools") {
        w.value(v);
    } else {
        super::provider::write_function_tools(&mut w, &req.tools);
    }
    w.key("truncation");
    match extra("truncation") {
        Some(v) => w.value(v),
        None => w.str("disabled"),
    };
    w.end_object();
    w.members_of().to_string()
}

fn opt_f64(w: &mut JsonWriter, v: Option<f64>) {
    match v {
        Some(x) => w.f64(x),
        None => w.null(),
    };
}

/// A complete answer as a `response` object.
pub fn encode_response(req: &ChatRequest, r: &ChatResponse) -> Vec<u8> {
    let rid = response_id(&r.id);
    let output = items(r, &rid);
    let finish = r
        .choices
        .iter()
        .find(|c| c.index == 0)
        .map_or(FinishReason::Stop, |c| c.finish_reason);
    let size: usize = output.iter().map(OutItem::size).sum();
    let mut w = JsonWriter::with_capacity(size + 1024);
    let head = Head {
        id: &rid,
        created: r.created,
        model: &r.model,
    };
    write_response(
        &mut w,
        &echo(req),
        &head,
        Outcome::Done(finish),
        &output,
        r.usage.as_ref(),
    );
    w.into_bytes()
}

// --- stored responses -------------------------------------------------------------------------

/// An operation on a response a provider stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredOp {
    /// `GET /v1/responses/{id}`
    Get,
    /// `DELETE /v1/responses/{id}`
    Delete,
    /// `GET /v1/responses/{id}/input_items`
    InputItems,
}

/// A stored-response call: which operation, on which response id, with which query parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCall {
    pub op: StoredOp,
    pub id: String,
    /// The query parameters the operation documents, as the client encoded them (others are
    /// dropped: a client's query string is no business of the provider's).
    pub query: String,
}

impl StoredCall {
    /// The call a method and path (query included) stand for; `None` for anything else. Ids are
    /// one path segment of `[A-Za-z0-9_-]`, so a client cannot steer the provider path.
    pub fn parse(method: &str, path: &str) -> Option<StoredCall> {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let path = path.strip_suffix('/').unwrap_or(path);
        let rest = path
            .strip_prefix("/v1/responses/")
            .or_else(|| path.strip_prefix("/responses/"))?;
        let (id, op) = match rest.split_once('/') {
            None if method == "DELETE" => (rest, StoredOp::Delete),
            None => (rest, StoredOp::Get),
            Some((id, "input_items")) => (id, StoredOp::InputItems),
            Some(_) => return None,
        };
        let valid = !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return None;
        }
        let allowed: &[&str] = match op {
            StoredOp::Get => &[
                "include",
                "include[]",
                "include_obfuscation",
                "starting_after",
                "stream",
            ],
            StoredOp::Delete => &[],
            StoredOp::InputItems => &["after", "include", "include[]", "limit", "order"],
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let name = pair.split('=').next().unwrap_or("");
                let name = name.replace("%5B%5D", "[]").replace("%5b%5d", "[]");
                !pair.is_empty() && allowed.contains(&name.as_str())
            })
            .collect();
        Some(StoredCall {
            op,
            id: id.to_string(),
            query: kept.join("&"),
        })
    }

    /// The method the operation takes.
    pub fn method(&self) -> &'static str {
        match self.op {
            StoredOp::Get | StoredOp::InputItems => "GET",
            StoredOp::Delete => "DELETE",
        }
    }
}
