//! Auth tests: every rejection path, model patterns, expiry and the key compare.
//! Keys here are throwaway strings; digests are computed with the public helper.

use super::*;
use crate::ir::ErrorKind;

fn h(name: &str, value: &str) -> (String, Vec<u8>) {
    (name.to_string(), value.as_bytes().to_vec())
}

fn cfg(json: serde_json::Value) -> AuthConfig {
    serde_json::from_value(json).unwrap()
}

fn ring(json: serde_json::Value) -> KeyRing {
    KeyRing::compile(&cfg(json)).unwrap().0
}

fn compile_err(json: serde_json::Value) -> crate::error::ConfigError {
    match KeyRing::compile(&cfg(json)) {
        Ok(_) => panic!("expected a config error"),
        Err(e) => e,
    }
}

fn demo() -> KeyRing {
    ring(serde_json::json!({
        "keys": [
            {"id": "team-a", "team": "a", "sha256": sha256_hex("sk-alpha"),
             "models": ["gpt-4o*", "claude-3-5-sonnet", "re:llama3(:[0-9]+b)?"],
             "deny_models": ["gpt-4o-realtime*"],
             "limits": {"requests_per_minute": 10}},
            {"id": "old", "sha256": sha256_hex("sk-old").to_uppercase(),
             "not_after": "2027-01-31T00:00:00Z"},
            {"id": "off", "sha256": sha256_hex("sk-off"), "disabled": true},
        ],
        "extra_header": "X-Goog-Api-Key",
    }))
}

fn auth_err(r: &KeyRing, headers: &[(String, Vec<u8>)]) -> ErrorInfo {
    let e = r.authenticate(headers, 1_800_000_000).unwrap_err();
    assert_eq!((e.status, e.kind), (401, ErrorKind::Authentication));
    for (_, v) in headers {
        let v = String::from_utf8_lossy(v);
        let key = v.trim_start_matches("Bearer ").trim();
        if key.len() > 3 {
            assert!(
                !e.message.contains(key),
                "message echoes the key: {}",
                e.message
            );
        }
    }
    e
}

#[test]
fn every_credential_source_authenticates() {
    let r = demo();
    for headers in [
        vec![h("authorization", "Bearer sk-alpha")],
        vec![h("authorization", "bearer   sk-alpha  ")],
        vec![h("authorization", "BEARER\tsk-alpha")],
        vec![h("x-api-key", "sk-alpha")],
        vec![h("api-key", "sk-alpha")],
        vec![h("x-goog-api-key", "sk-alpha")],
        // The same key twice from different sources is one credential.
        vec![
            h("authorization", "Bearer sk-alpha"),
            h("x-api-key", "sk-alpha"),
        ],
        // Empty values count as absent.
        vec![h("authorization", "Bearer "), h("x-api-key", "sk-alpha")],
    ] {
        let key = r.authenticate(&headers, 0).unwrap();
        assert_eq!(key.id, "team-a", "{headers:?}");
        assert_eq!(key.team.as_deref(), Some("a"));
        assert!(key.limits.is_some());
    }
    assert_eq!(
        r.credential_headers(),
        ["authorization", "x-api-key", "api-key", "x-goog-api-key"]
    );
}

#[test]
fn each_rejection_path_is_a_401_with_its_own_message() {
    let r = demo();
    type Headers = Vec<(String, Vec<u8>)>;
    let cases: Vec<(Headers, &str)> = vec![
        (vec![], "missing API key"),
        (vec![h("authorization", "Bearer")], "missing API key"),
        (
            vec![h("authorization", "Bearer sk-nope")],
            "invalid API key",
        ),
        (vec![h("x-api-key", "sk-off")], "API key disabled"),
        (
            vec![h("authorization", "Basic dXNlcjpwYXNz")],
            "conflicting credentials",
        ),
        (
            vec![h("authorization", "sk-alpha")],
            "conflicting credentials",
        ),
        (
            vec![
                h("authorization", "Bearer sk-alpha"),
                h("x-api-key", "sk-other"),
            ],
            "conflicting credentials",
        ),
        (
            vec![h("x-api-key", "sk-alpha"), h("x-api-key", "sk-alpha")],
            "conflicting credentials",
        ),
        (
            vec![h("x-api-key", "sk-alpha"), h("X-Goog-Api-Key", "sk-old")],
            "conflicting credentials",
        ),
        (vec![h("x-api-key", &"k".repeat(513))], "malformed API key"),
        (
            vec![("x-api-key".to_string(), vec![b's', b'k', 0xff, 0xfe])],
            "malformed API key",
        ),
        (
            vec![("api-key".to_string(), vec![0xc3])],
            "malformed API key",
        ),
    ];
    for (headers, want) in cases {
        let e = auth_err(&r, &headers);
        assert!(e.message.starts_with(want), "{headers:?}: {}", e.message);
    }
    // A 512-byte key is merely unknown.
    assert_eq!(
        auth_err(&r, &[h("x-api-key", &"k".repeat(512))]).message,
        "invalid API key"
    );
}

#[test]
fn expiry_is_inclusive_of_not_after() {
    let r = demo();
    let t = crate::time::parse_rfc3339("2027-01-31T00:00:00Z").unwrap();
    assert_eq!(t, 1_801_353_600);
    let headers = [h("x-api-key", "sk-old")];
    assert_eq!(r.authenticate(&headers, t).unwrap().id, "old");
    assert_eq!(
        r.authenticate(&headers, t + 1).unwrap_err().message,
        "API key expired"
    );
}

#[test]
fn anonymous_only_when_no_key_is_presented() {
    let r = ring(serde_json::json!({
        "keys": [{"id": "k", "sha256": sha256_hex("sk-k")}],
        "anonymous": {"id": "ollama-anon", "models": ["llama3*"],
                      "limits": {"requests_per_minute": 5}},
    }));
    let anon = r.authenticate(&[], 0).unwrap();
    assert!(anon.anonymous);
    assert_eq!(anon.id, "ollama-anon");
    assert!(anon.may_use("llama3:8b") && !anon.may_use("gpt-4o"));
    assert_eq!(
        r.authenticate(&[h("authorization", "Bearer wrong")], 0)
            .unwrap_err()
            .message,
        "invalid API key"
    );
    assert!(
        !r.authenticate(&[h("x-api-key", "sk-k")], 0)
            .unwrap()
            .anonymous
    );
}

#[test]
fn model_allow_globs_regexes_and_deny() {
    let r = demo();
    let k = r.key("team-a").unwrap();
    assert!(k.may_use("gpt-4o"));
    assert!(k.may_use("gpt-4o-mini"));
    assert!(!k.may_use("gpt-4"), "globs are anchored");
    assert!(!k.may_use("xgpt-4o"));
    assert!(!k.may_use("gpt-4o-realtime-preview"), "deny wins");
    assert!(k.may_use("claude-3-5-sonnet"));
    assert!(
        !k.may_use("claude-3-5-sonnet-latest"),
        "exact names are exact"
    );
    assert!(k.may_use("llama3") && k.may_use("llama3:70b"));
    assert!(!k.may_use("llama3:70b-instruct"), "regexes are anchored");
    assert!(!k.may_use(""));
    // No allowlist: everything not denied.
    let r = ring(serde_json::json!({"keys": [
        {"id": "k", "sha256": sha256_hex("x"), "deny_models": ["*-preview", "o?"]}]}));
    let k = r.key("k").unwrap();
    assert!(k.may_use("anything"));
    assert!(!k.may_use("gpt-preview") && !k.may_use("o1") && k.may_use("o12"));
    assert!(!k.may_use("a-\n-preview"), "a deny glob spans newlines");
    // An empty allowlist allows nothing.
    let r =
        ring(serde_json::json!({"keys": [{"id": "k", "sha256": sha256_hex("x"), "models": []}]}));
    assert!(!r.key("k").unwrap().may_use("gpt-4o"));
}

#[test]
fn config_errors_name_the_field() {
    let d = sha256_hex("x");
    let cases = [
        (
            serde_json::json!({"keys": [{"id": "a", "sha256": d}, {"id": "a", "sha256": sha256_hex("y")}]}),
            "auth.keys[1].id",
        ),
        (
            serde_json::json!({"keys": [{"id": "a", "sha256": d}, {"id": "b", "sha256": d}]}),
            "auth.keys[1]",
        ),
        (
            serde_json::json!({"keys": [{"id": "a", "sha256": "abc"}]}),
            "auth.keys[0].sha256",
        ),
        (
            serde_json::json!({"keys": [{"id": "a", "sha256": d.replace('a', "g")}]}),
            "auth.keys[0].sha256",
        ),
        (
            serde_json::json!({"keys": [{"id": "a", "key": "secret-1"}]}),
            "auth.keys[0].key",
        ),
        (
            serde_json::json!({"keys": [{"id": "a", "key": "secret-1", "sha256": d}],
                               "allow_plaintext_keys": true}),
            "auth.keys[0]",
        ),
        (serde_json::json!({"keys": [{"id": "a"}]}), "auth.keys[0]"),
        (
            serde_json::json!({"keys": [{"id": "a b", "sha256": d}]}),
            "auth.keys[0].id",
        ),
        (
            serde_json::json!({"keys": [{"id": "", "sha256": d}]}),
            "auth.keys[0].id",
        ),
        (
            serde_json::json!({"keys": [{"id": "a", "sha256": d}, {"id": "b", "sha256": sha256_hex("y")},
                {"id": "c", "sha256": sha256_hex("z"), "not_after": "2027-01-31"}]}),
            "auth.keys[2].not_after",
        ),
        (
            serde_json::json!({"keys": [{"id": "a", "sha256": d, "models": ["re:("]}]}),
            "auth.keys[0].models[0]",
        ),
        (
            serde_json::json!({"keys": [{"id": "a", "sha256": d, "deny_models": ["ok", ""]}]}),
            "auth.keys[0].deny_models[1]",
        ),
        (
            serde_json::json!({"keys": [{"id": "a", "sha256": d,
                               "limits": {"requests_per_minute": 0}}]}),
            "auth.keys[0].limits.requests_per_minute",
        ),
        (
            serde_json::json!({"keys": [{"id": "a", "sha256": d}], "anonymous": {"id": "a"}}),
            "auth.anonymous.id",
        ),
        (
            serde_json::json!({"extra_header": "Authorization"}),
            "auth.extra_header",
        ),
        (
            serde_json::json!({"extra_header": "x key"}),
            "auth.extra_header",
        ),
        (
            serde_json::json!({"extra_header": "host"}),
            "auth.extra_header",
        ),
    ];
    for (json, field) in cases {
        let e = compile_err(json.clone());
        assert_eq!(e.field, field, "{json}: {e}");
        assert!(!e.message.contains("secret-1"));
    }
    assert!(serde_json::from_value::<AuthConfig>(serde_json::json!({"kyes": []})).is_err());
}

#[test]
fn plaintext_keys_need_opt_in_and_warn() {
    let (r, warnings) = KeyRing::compile(&cfg(serde_json::json!({
        "allow_plaintext_keys": true,
        "keys": [{"id": "dev", "key": "sk-dev-123"}],
    })))
    .unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("auth.keys[0].key") && !warnings[0].contains("sk-dev-123"));
    assert_eq!(
        r.authenticate(&[h("x-api-key", "sk-dev-123")], 0)
            .unwrap()
            .id,
        "dev"
    );
    assert!(!format!("{:?}", r.key("dev").unwrap()).contains("digest"));
}

#[test]
fn constant_time_compare() {
    let a = digest::digest("one");
    let b = digest::digest("two");
    assert!(constant_time_eq(&a, &a));
    assert!(!constant_time_eq(&a, &b));
    let mut last = a;
    last[31] ^= 1;
    assert!(!constant_time_eq(&a, &last), "the last byte counts");
    let mut first = a;
    first[0] ^= 0x80;
    assert!(!constant_time_eq(&a, &first), "the first byte counts");
    assert!(!constant_time_eq(&a, &a[..31]));
    assert!(constant_time_eq(&[], &[]));
}

#[test]
fn sha256_hex_matches_the_standard_vector() {
    assert_eq!(
        sha256_hex("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        digest::parse_hex_digest(&sha256_hex("abc")),
        Some(digest::digest("abc"))
    );
}

fn bound() -> KeyRing {
    ring(serde_json::json!({"keys": [
        {"id": "app", "sha256": sha256_hex("sk-app"),
         "client_identities": ["spiffe://weir.fleet/app", "spiffe://weir.fleet/app-canary"]},
        {"id": "free", "sha256": sha256_hex("sk-free")},
    ]}))
}

fn xfcc(value: &str) -> (String, Vec<u8>) {
    h("x-forwarded-client-cert", value)
}

#[test]
fn a_bound_key_is_accepted_only_from_its_identities() {
    let r = bound();
    let bearer = h("authorization", "Bearer sk-app");
    for ok in [
        "Hash=ab12;URI=spiffe://weir.fleet/app",
        "By=spiffe://weir.fleet/front;Hash=ab12;URI=spiffe://weir.fleet/app-canary",
        // Several URI SANs in one certificate: any of them may match.
        "Hash=ab;URI=spiffe://other/x;URI=\"spiffe://weir.fleet/app\"",
        // Only the last element counts: the one the nearest trusted Envoy set.
        "URI=spiffe://weir.fleet/batch,Hash=cd;URI=spiffe://weir.fleet/app",
    ] {
        let got = r.authenticate(&[bearer.clone(), xfcc(ok)], 1_800_000_000);
        assert_eq!(got.map(|k| k.id.as_str()).ok(), Some("app"), "{ok}");
    }
    let e = auth_err(&r, std::slice::from_ref(&bearer));
    assert!(
        e.message.contains("without a verified client certificate"),
        "{}",
        e.message
    );
    for other in [
        "Hash=ab12;URI=spiffe://weir.fleet/batch",
        "Hash=ab12",
        "URI=spiffe://weir.fleet/app,Hash=cd;URI=spiffe://weir.fleet/batch",
        "Hash=ab;URI=spiffe://weir.fleet/application",
        "Hash=ab;DNS=spiffe://weir.fleet/app",
    ] {
        let e = auth_err(&r, &[bearer.clone(), xfcc(other)]);
        assert!(
            e.message.contains("other client certificate identities"),
            "{other}: {}",
            e.message
        );
        assert!(!e.message.contains("spiffe://"), "{}", e.message);
    }
    for malformed in ["URI=\"spiffe://weir.fleet/app", "URI", "Hash=ab;junk"] {
        let e = auth_err(&r, &[bearer.clone(), xfcc(malformed)]);
        assert!(
            e.message.contains("malformed"),
            "{malformed}: {}",
            e.message
        );
    }
    let e = auth_err(
        &r,
        &[
            bearer.clone(),
            xfcc("URI=spiffe://weir.fleet/app"),
            xfcc("URI=spiffe://weir.fleet/app"),
        ],
    );
    assert!(e.message.contains("more than once"), "{}", e.message);
    let long = format!("URI=spiffe://weir.fleet/app;Hash={}", "a".repeat(20_000));
    assert!(auth_err(&r, &[bearer.clone(), xfcc(&long)])
        .message
        .contains("longer than"));
    // A key not bound to identities ignores the header, whatever it holds.
    let free = h("authorization", "Bearer sk-free");
    assert!(r
        .authenticate(std::slice::from_ref(&free), 1_800_000_000)
        .is_ok());
    assert!(r
        .authenticate(&[free, xfcc("URI=\"broken")], 1_800_000_000)
        .is_ok());
    // A wrong key stays a wrong key, with or without an identity.
    let e = auth_err(
        &r,
        &[
            h("authorization", "Bearer sk-nope"),
            xfcc("URI=spiffe://weir.fleet/app"),
        ],
    );
    assert_eq!(e.message, "invalid API key");
}

#[test]
fn xfcc_values_are_parsed_with_quotes_and_escapes() {
    let uris = identity::last_element_uris(
        br#"By=spiffe://a;URI="spiffe://x/a,b;c";Subject="CN=\"q\",O=x";URI=spiffe://y"#,
    );
    assert_eq!(
        uris,
        Some(vec![
            "spiffe://x/a,b;c".to_string(),
            "spiffe://y".to_string()
        ])
    );
    assert_eq!(identity::last_element_uris(b"\xff\xfe"), None);
    assert_eq!(identity::last_element_uris(b""), Some(vec![]));
}

#[test]
fn client_identities_are_checked_at_load() {
    for (ids, want) in [
        (serde_json::json!([""]), "must be a URI SAN"),
        (serde_json::json!(["no-scheme"]), "must be a URI SAN"),
        (serde_json::json!(["spiffe://a/b c"]), "must be a URI SAN"),
        (serde_json::json!(["spiffe://a;b"]), "must be a URI SAN"),
        (
            serde_json::json!(["spiffe://a/b", "spiffe://a/b"]),
            "same identity as",
        ),
    ] {
        let e = compile_err(serde_json::json!({"keys": [
            {"id": "k", "sha256": sha256_hex("sk-k"), "client_identities": ids}]}));
        assert!(e.to_string().contains(want), "{e}");
        assert!(
            e.to_string().contains("auth.keys[0].client_identities["),
            "{e}"
        );
    }
    let many: Vec<String> = (0..65).map(|i| format!("spiffe://a/{i}")).collect();
    let e = compile_err(serde_json::json!({"keys": [
        {"id": "k", "sha256": sha256_hex("sk-k"), "client_identities": many}]}));
    assert!(e.to_string().contains("at most 64"), "{e}");
}
