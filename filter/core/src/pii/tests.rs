//! Behaviour tests for the public PII API: config errors, actions, field coverage, the vault
//! budget, whole and streamed restore, and robustness on arbitrary Unicode.

use super::*;
use crate::ir::{
    ChatRequest, ChatResponse, Choice, EmbeddingsRequest, FinishReason, Media, Message, Part,
    Response, Role, StreamEvent, ToolCall, Usage,
};

fn cfg(json: &str) -> PiiConfig {
    serde_json::from_str(json).unwrap()
}

fn scrubber(json: &str) -> Scrubber {
    Scrubber::compile(&cfg(json)).unwrap()
}

fn chat(texts: &[&str]) -> Request {
    Request::Chat(ChatRequest {
        model: "m".into(),
        messages: texts
            .iter()
            .map(|t| Message::text(Role::User, *t))
            .collect(),
        ..Default::default()
    })
}

fn texts(req: &Request) -> Vec<String> {
    match req {
        Request::Chat(c) | Request::CountTokens(c) => {
            c.messages.iter().map(|m| m.joined_text()).collect()
        }
        Request::Embeddings(e) => e.input.clone(),
    }
}

fn scrub1(s: &Scrubber, text: &str) -> String {
    let mut v = s.new_vault();
    s.scrub_text(text, &mut v).unwrap().0
}

#[test]
fn config_errors_name_the_field() {
    let err = |json: &str| Scrubber::compile(&cfg(json)).unwrap_err().field;
    assert_eq!(
        err(r#"{"enabled":true,"detectors":{"emial":"redact"}}"#),
        "pii.detectors.emial"
    );
    assert_eq!(
        err(r#"{"enabled":true,"detectors":{"email":"scramble"}}"#),
        "pii.detectors.email"
    );
    assert_eq!(
        err(r#"{"enabled":true,"default_action":"nope"}"#),
        "pii.default_action"
    );
    assert_eq!(
        err(
            r#"{"custom":[{"name":"a","regex":"x","action":"redact"},{"name":"b","regex":"(","action":"redact"}]}"#
        ),
        "pii.custom[1].regex"
    );
    assert_eq!(
        err(r#"{"custom":[{"name":"b","regex":"x*","action":"redact"}]}"#),
        "pii.custom[0].regex"
    );
    assert_eq!(
        err(r#"{"custom":[{"name":"Bad Name","regex":"x","action":"redact"}]}"#),
        "pii.custom[0].name"
    );
    assert_eq!(
        err(r#"{"custom":[{"name":"email","regex":"x","action":"redact"}]}"#),
        "pii.custom[0].name"
    );
    assert_eq!(
        err(r#"{"custom":[{"name":"x","regex":"x","action":"zap"}]}"#),
        "pii.custom[0].action"
    );
    assert_eq!(err(r#"{"allow":["ok","re:("]}"#), "pii.allow[1]");
    assert_eq!(
        err(r#"{"enabled":true,"detectors":{"email":"hash"}}"#),
        "pii.detectors.email"
    );
    assert_eq!(
        err(r#"{"enabled":true,"default_action":"hash"}"#),
        "pii.default_action"
    );
    assert_eq!(
        err(r#"{"hmac_secret_env":"WEIR_PII_TEST_SURELY_UNSET_VAR"}"#),
        "pii.hmac_secret_env"
    );
    assert!(serde_json::from_str::<PiiConfig>(r#"{"enabled":true,"bogus":1}"#).is_err());
}

#[test]
fn disabled_scrubber_touches_nothing() {
    let s = Scrubber::compile(&PiiConfig::default()).unwrap();
    assert!(!s.enabled());
    assert!(!s.restores());
    let mut req = chat(&["mail me at john@example.com"]);
    let mut v = s.new_vault();
    assert_eq!(
        s.scrub_request(&mut req, &mut v).unwrap(),
        Detections::default()
    );
    assert_eq!(texts(&req), ["mail me at john@example.com"]);
}

#[test]
fn each_action() {
    let s = scrubber(
        r#"{"enabled":true,"default_action":"off","hmac_secret":"k",
            "detectors":{"email":"redact","credit_card":"mask","us_ssn":"hash","phone":"mask",
                         "iban":"mask","aws_access_key":"mask"}}"#,
    );
    assert_eq!(scrub1(&s, "mail john@example.com now"), "mail [EMAIL] now");
    assert_eq!(
        scrub1(&s, "card 4111 1111 1111 1111."),
        "card ************1111."
    );
    let h = scrub1(&s, "ssn 123-45-6789");
    assert!(
        h.starts_with("ssn [US_SSN:") && h.ends_with(']') && h.len() == 4 + 17,
        "{h}"
    );
    assert_eq!(scrub1(&s, "ssn 123-45-6789"), h, "hash is deterministic");
    assert_eq!(scrub1(&s, "call +1 415 555 2671"), "call +* *** *** **71");
    assert_eq!(
        scrub1(&s, "IBAN GB29 NWBK 6016 1331 9268 19"),
        "IBAN GB****************6819"
    );
    assert_eq!(
        scrub1(&s, "IBAN DE89-3704-0044-0532-0130-00"),
        "IBAN DE****************3000"
    );
    assert_eq!(scrub1(&s, "key AKIAIOSFODNN7EXAMPLE"), "key AKIA****");
    // Off: ipv4 untouched.
    assert_eq!(scrub1(&s, "host 10.0.0.1"), "host 10.0.0.1");

    let m = scrubber(r#"{"enabled":true,"default_action":"mask"}"#);
    assert_eq!(scrub1(&m, "john.doe@example.com"), "j***@example.com");
}

#[test]
fn block_names_the_detector() {
    let s = scrubber(r#"{"enabled":true,"detectors":{"private_key":"block"}}"#);
    let mut req = chat(&[
        "hi john@example.com",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
    ]);
    let mut v = s.new_vault();
    assert_eq!(
        s.scrub_request(&mut req, &mut v),
        Err(Blocked::Detected {
            detector: "private_key".into()
        })
    );
}

#[test]
fn placeholders_are_stable_within_a_request_and_restored() {
    let s = scrubber(r#"{"enabled":true,"default_action":"placeholder","restore":true}"#);
    assert!(s.restores());
    let mut req = chat(&[
        "I am john@example.com, call +44 20 7946 0958",
        "again: john@example.com and jane@example.org",
    ]);
    let mut v = s.new_vault();
    let det = s.scrub_request(&mut req, &mut v).unwrap();
    assert_eq!(
        texts(&req),
        [
            "I am <EMAIL_1>, call <PHONE_1>",
            "again: <EMAIL_1> and <EMAIL_2>"
        ]
    );
    assert_eq!(
        det.counts,
        vec![("email".to_string(), 3), ("phone".to_string(), 1)]
    );
    assert!(!v.is_empty());
    assert!(s.vault_bytes_in_use() > 0);

    let mut resp = Response::Chat(ChatResponse {
        id: "r".into(),
        model: "m".into(),
        created: 0,
        choices: vec![Choice {
            index: 0,
            message: Message {
                role: Role::Assistant,
                content: vec![Part::Text {
                    text: "Hello <EMAIL_1>! <EMAIL_7> stays.".into(),
                }],
                tool_calls: vec![ToolCall {
                    id: "c".into(),
                    name: "send".into(),
                    arguments: r#"{"to":"<EMAIL_2>","phone":"<PHONE_1>"}"#.into(),
                }],
                tool_call_id: None,
                name: None,
                is_error: false,
                refusal: None,
            },
            finish_reason: FinishReason::Stop,
        }],
        usage: None,
    });
    v.restore_response(&mut resp);
    let Response::Chat(c) = &resp else {
        unreachable!()
    };
    assert_eq!(
        c.choices[0].message.joined_text(),
        "Hello john@example.com! <EMAIL_7> stays."
    );
    assert_eq!(
        c.choices[0].message.tool_calls[0].arguments,
        r#"{"to":"jane@example.org","phone":"+44 20 7946 0958"}"#
    );
    drop(v);
    assert_eq!(s.vault_bytes_in_use(), 0);
}

#[test]
fn scope_covers_every_provider_visible_text_and_nothing_else() {
    let s = scrubber(r#"{"enabled":true}"#);
    let mut req = Request::Chat(ChatRequest {
        model: "john@example.com".into(),
        messages: vec![
            Message::text(Role::System, "owner: a@b.co"),
            Message::text(Role::Developer, "dev: a@b.co"),
            Message {
                role: Role::User,
                content: vec![
                    Part::Text {
                        text: "see a@b.co".into(),
                    },
                    Part::Image {
                        source: Media::Url {
                            url: "https://x/a@b.co.png".into(),
                        },
                    },
                    Part::Document {
                        source: Media::Base64 {
                            media_type: "application/pdf".into(),
                            data: "a@b.co".into(),
                        },
                        title: Some("CV of a@b.co".into()),
                    },
                ],
                tool_calls: vec![],
                tool_call_id: None,
                name: None,
                is_error: false,
                refusal: None,
            },
            Message {
                role: Role::Assistant,
                content: vec![],
                tool_calls: vec![ToolCall {
                    id: "call_a@b.co".into(),
                    name: "lookup".into(),
                    arguments: r#"{"email": "a@b.co", "n": 4111111111111111, "nested": ["x", {"k": "say \"hi\" to a@b.co"}]}"#.into(),
                }],
                tool_call_id: None,
                name: None,
                is_error: false,
                refusal: None,
            },
            Message {
                role: Role::Tool,
                content: vec![Part::Text {
                    text: "found a@b.co".into(),
                }],
                tool_calls: vec![],
                tool_call_id: Some("call_a@b.co".into()),
                name: None,
                is_error: false,
                refusal: None,
            },
        ],
        ..Default::default()
    });
    let mut v = s.new_vault();
    let det = s.scrub_request(&mut req, &mut v).unwrap();
    let Request::Chat(c) = &req else {
        unreachable!()
    };
    assert_eq!(c.model, "john@example.com");
    assert_eq!(c.messages[0].joined_text(), "owner: [EMAIL]");
    assert_eq!(c.messages[1].joined_text(), "dev: [EMAIL]");
    assert_eq!(c.messages[2].joined_text(), "see [EMAIL]");
    let Part::Image { source } = &c.messages[2].content[1] else {
        unreachable!()
    };
    assert_eq!(source.to_url(), "https://x/a@b.co.png");
    let Part::Document { source, title } = &c.messages[2].content[2] else {
        unreachable!()
    };
    assert_eq!(title.as_deref(), Some("CV of [EMAIL]"));
    assert_eq!(source.to_url(), "data:application/pdf;base64,a@b.co");
    let args: serde_json::Value =
        serde_json::from_str(&c.messages[3].tool_calls[0].arguments).unwrap();
    assert_eq!(
        args,
        serde_json::json!({"email": "[EMAIL]", "n": "[CREDIT_CARD]", "nested": ["x", {"k": "say \"hi\" to [EMAIL]"}]})
    );
    assert_eq!(c.messages[3].tool_calls[0].id, "call_a@b.co");
    assert_eq!(c.messages[4].joined_text(), "found [EMAIL]");
    assert_eq!(c.messages[4].tool_call_id.as_deref(), Some("call_a@b.co"));
    assert_eq!(
        det.counts,
        vec![("credit_card".to_string(), 1), ("email".to_string(), 7)]
    );

    let mut emb = Request::Embeddings(EmbeddingsRequest {
        model: "e".into(),
        input: vec!["x a@b.co".into(), "plain".into()],
        ..Default::default()
    });
    s.scrub_request(&mut emb, &mut v).unwrap();
    assert_eq!(texts(&emb), ["x [EMAIL]", "plain"]);
}

#[test]
fn unparseable_arguments_are_scrubbed_as_text() {
    let s = scrubber(r#"{"enabled":true}"#);
    let mut req = Request::Chat(ChatRequest {
        model: "m".into(),
        messages: vec![Message {
            role: Role::Assistant,
            content: vec![],
            tool_calls: vec![ToolCall {
                id: "1".into(),
                name: "f".into(),
                arguments: r#"{"to": "a@b.co""#.into(),
            }],
            tool_call_id: None,
            name: None,
            is_error: false,
            refusal: None,
        }],
        ..Default::default()
    });
    let mut v = s.new_vault();
    s.scrub_request(&mut req, &mut v).unwrap();
    let Request::Chat(c) = &req else {
        unreachable!()
    };
    assert_eq!(c.messages[0].tool_calls[0].arguments, r#"{"to": "[EMAIL]""#);
}

#[test]
fn allow_list_and_custom_detectors() {
    let s = scrubber(
        r#"{"enabled":true,
            "allow":["Support@Example.com","re:.*@example\\.org"],
            "custom":[{"name":"employee_id","regex":"(?-u:\\b)EMP-[0-9]{6}(?-u:\\b)","action":"placeholder"}]}"#,
    );
    assert_eq!(
        scrub1(
            &s,
            "write support@example.com or bob@example.org or bob@example.net"
        ),
        "write support@example.com or bob@example.org or [EMAIL]"
    );
    assert_eq!(
        scrub1(&s, "EMP-123456 and EMP-123456 and EMP-654321"),
        "<EMPLOYEE_ID_1> and <EMPLOYEE_ID_1> and <EMPLOYEE_ID_2>"
    );
}

fn detected(s: &Scrubber, text: &str) -> Vec<(String, String)> {
    s.detect(text)
        .into_iter()
        .map(|sp| (sp.detector, text[sp.start..sp.end].to_string()))
        .collect()
}

#[test]
fn overlaps_resolve_by_earliest_start_then_listed_order() {
    let custom = |pats: &[(&str, &str)]| {
        let list: Vec<String> = pats
            .iter()
            .map(|(n, r)| format!(r#"{{"name":"{n}","regex":"{r}","action":"redact"}}"#))
            .collect();
        scrubber(&format!(
            r#"{{"enabled":true,"custom":[{}]}}"#,
            list.join(",")
        ))
    };
    // One start: the first listed pattern wins, even when a later one is longer.
    assert_eq!(
        scrub1(&custom(&[("short", "ab"), ("long", "abcd")]), "xabcd"),
        "x[SHORT]cd"
    );
    assert_eq!(
        scrub1(&custom(&[("long", "abcd"), ("short", "ab")]), "xabcd"),
        "x[LONG]"
    );
    // An earlier start wins over listed order.
    assert_eq!(
        scrub1(&custom(&[("late", "cd"), ("early", "bcd")]), "abcd"),
        "a[EARLY]"
    );
    // Custom detectors come before the built-ins at the same start.
    assert_eq!(
        scrub1(
            &custom(&[("mail", "[a-z]{1,64}@example[.]com")]),
            "to bo@example.com"
        ),
        "to [MAIL]"
    );
    // Each of a detector's alternatives reports that detector.
    let s = scrubber(r#"{"enabled":true}"#);
    for phone in ["+44 20 7946 0958", "(415) 555-2671", "020 7946 0958"] {
        assert_eq!(
            detected(&s, &format!("call {phone} now")),
            [("phone".to_string(), phone.to_string())]
        );
    }
}

#[test]
fn a_rejected_candidate_is_skipped_as_a_whole() {
    // Card-shaped but starting with 0, so the card validator rejects it; the phone reading of
    // the same start is not retried, and nothing inside it is reported either.
    let text = "call 0044 2079 4609 58 today";
    assert!(detected(&scrubber(r#"{"enabled":true}"#), text).is_empty());
    let no_cards = scrubber(r#"{"enabled":true,"detectors":{"credit_card":"off"}}"#);
    assert_eq!(
        detected(&no_cards, text),
        [("phone".to_string(), "0044 2079 4609 58".to_string())]
    );
    // A failed candidate does not hide the next one.
    assert_eq!(
        detected(
            &scrubber(r#"{"enabled":true}"#),
            "4111 1111 1111 1112 or 4111 1111 1111 1111"
        ),
        [("credit_card".to_string(), "4111 1111 1111 1111".to_string())]
    );
}

#[test]
fn empty_custom_matches_are_stepped_over() {
    // Never empty on "" but empty at every word boundary without an `x`.
    let s = scrubber(
        r#"{"enabled":true,"custom":[{"name":"xs","regex":"(?-u:\\b)x{0,64}","action":"redact"}]}"#,
    );
    assert_eq!(scrub1(&s, "ab xx é cd"), "ab [XS] é cd");
    // An empty match still claims its start: the scan steps one char on from there.
    assert_eq!(scrub1(&s, "mail x jo@example.com"), "mail [XS] j[EMAIL]");
}

#[test]
fn vault_budget_falls_back_to_redact_and_is_released() {
    // Room for about two entries across all live vaults of this VM.
    let s = scrubber(
        r#"{"enabled":true,"default_action":"placeholder","restore":true,"vault_max_bytes":320}"#,
    );
    let mut v1 = s.new_vault();
    let (out1, d1) = s.scrub_text("a@x.com b@x.com", &mut v1).unwrap();
    assert_eq!(out1, "<EMAIL_1> <EMAIL_2>");
    assert_eq!(d1.fallback_redactions, 0);
    let mut v2 = s.new_vault();
    let (out2, d2) = s.scrub_text("c@x.com", &mut v2).unwrap();
    // The value still never leaves in clear.
    assert_eq!(out2, "[EMAIL]");
    assert_eq!(d2.counts, vec![("email".to_string(), 1)]);
    assert_eq!(d2.fallback_redactions, 1);
    assert!(v2.is_empty());
    drop(v1);
    let (out3, _) = s.scrub_text("c@x.com", &mut v2).unwrap();
    assert_eq!(out3, "<EMAIL_1>");
    drop(v2);
    assert_eq!(s.vault_bytes_in_use(), 0);
}

#[test]
fn debug_never_shows_values_or_secrets() {
    let c = cfg(
        r#"{"enabled":true,"hmac_secret":"topsecret","allow":["boss@corp.com"],"default_action":"placeholder"}"#,
    );
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains("topsecret") && !dbg.contains("boss@corp.com"),
        "{dbg}"
    );
    let s = Scrubber::compile(&c).unwrap();
    assert!(!format!("{s:?}").contains("topsecret"));
    let mut v = s.new_vault();
    s.scrub_text("john@example.com", &mut v).unwrap();
    assert!(!format!("{v:?}").contains("john"));
}

fn restore_vault() -> (Scrubber, Vault) {
    // The custom detector yields a value with quotes, to check JSON escaping on restore.
    let s = scrubber(
        r#"{"enabled":true,"default_action":"placeholder","restore":true,
            "custom":[{"name":"nick","regex":"Q\"[a-z]{1,32}\"","action":"placeholder"}]}"#,
    );
    let mut v = s.new_vault();
    let (out, _) = s
        .scrub_text("john@example.com, Q\"q\"; +1 415 555 2671", &mut v)
        .unwrap();
    assert_eq!(out, "<EMAIL_1>, <NICK_1>; <PHONE_1>");
    (s, v)
}

fn run_stream(v: &Vault, events: Vec<StreamEvent>) -> Vec<StreamEvent> {
    let mut r = EventRestorer::new();
    let mut out = Vec::new();
    let bound = v.longest_placeholder();
    for ev in events {
        r.event(v, ev, &mut out);
        // At most two streams hold at once in these tests, each less than a placeholder.
        assert!(
            r.held_bytes() <= 2 * bound.saturating_sub(1),
            "held more than a placeholder per stream"
        );
    }
    r.flush(v, &mut out);
    out
}

fn text_of(evs: &[StreamEvent], choice: u32) -> String {
    evs.iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { choice: c, text } if *c == choice => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn args_of(evs: &[StreamEvent], index: u32) -> String {
    evs.iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallDelta {
                index: i,
                arguments,
                ..
            } if *i == index => Some(arguments.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn stream_restore_survives_every_split() {
    let (_s, v) = restore_vault();
    let answer = "Hi <EMAIL_1>! Call <PHONE_1> or <EMAIL_9>, <EMA <x> a<b <EMAIL_1>";
    let want =
        "Hi john@example.com! Call +1 415 555 2671 or <EMAIL_9>, <EMA <x> a<b john@example.com";
    for i in 0..=answer.len() {
        for j in i..=answer.len() {
            let parts = [&answer[..i], &answer[i..j], &answer[j..]];
            let mut evs = vec![StreamEvent::Start {
                id: "x".into(),
                model: "m".into(),
                created: 0,
            }];
            for p in parts {
                evs.push(StreamEvent::TextDelta {
                    choice: 0,
                    text: p.to_string(),
                });
            }
            evs.push(StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::Stop,
            });
            let out = run_stream(&v, evs);
            assert_eq!(text_of(&out, 0), want, "split at {i},{j}");
            // Everything is out before Finish.
            let fin = out
                .iter()
                .position(|e| matches!(e, StreamEvent::Finish { .. }))
                .unwrap();
            assert!(out[fin + 1..].is_empty());
        }
    }
}

#[test]
fn stream_restore_of_tool_arguments_and_interleaved_choices() {
    let (_s, v) = restore_vault();
    let args = r#"{"to":"<NICK_1>","cc":"<EMAIL_1>"}"#;
    let mut evs = vec![StreamEvent::ToolCallStart {
        choice: 0,
        index: 0,
        id: "c".into(),
        name: "send".into(),
    }];
    for ch in args.chars() {
        evs.push(StreamEvent::ToolCallDelta {
            choice: 0,
            index: 0,
            arguments: ch.to_string(),
        });
        evs.push(StreamEvent::TextDelta {
            choice: 1,
            text: ch.to_string(),
        });
    }
    evs.push(StreamEvent::Usage(Usage::default()));
    let out = run_stream(&v, evs);
    let restored = args_of(&out, 0);
    assert_eq!(restored, r#"{"to":"Q\"q\"","cc":"john@example.com"}"#);
    serde_json::from_str::<serde_json::Value>(&restored).unwrap();
    assert_eq!(text_of(&out, 1), r#"{"to":"Q"q"","cc":"john@example.com"}"#);
    assert!(matches!(out.last(), Some(StreamEvent::Usage(_))));
}

#[test]
fn held_text_of_a_choice_precedes_its_next_event() {
    let (_s, v) = restore_vault();
    let out = run_stream(
        &v,
        vec![
            StreamEvent::TextDelta {
                choice: 0,
                text: "see <EMA".into(),
            },
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 0,
                id: "c".into(),
                name: "f".into(),
            },
        ],
    );
    assert_eq!(
        out,
        vec![
            StreamEvent::TextDelta {
                choice: 0,
                text: "see ".into()
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "<EMA".into()
            },
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 0,
                id: "c".into(),
                name: "f".into()
            },
        ]
    );
}

#[test]
fn empty_vault_streams_pass_through() {
    let s = scrubber(r#"{"enabled":true,"default_action":"placeholder","restore":true}"#);
    let v = s.new_vault();
    let evs = vec![StreamEvent::TextDelta {
        choice: 0,
        text: "a <EMAIL_1".into(),
    }];
    assert_eq!(run_stream(&v, evs.clone()), evs);
}

/// Deterministic xorshift, so the fuzz cases are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[test]
fn never_panics_on_arbitrary_text() {
    let s = scrubber(
        r#"{"enabled":true,"default_action":"placeholder","detectors":{"phone":"mask","ipv4":"mask","ipv6":"mask","iban":"mask","credit_card":"mask","email":"mask"},"restore":true}"#,
    );
    let alphabet: Vec<&str> = vec![
        "a",
        "Z",
        "0",
        "1",
        "4",
        "9",
        " ",
        "-",
        ".",
        ":",
        "@",
        "+",
        "(",
        ")",
        "<",
        ">",
        "_",
        "/",
        "\u{301}",
        "\u{5d0}",
        "\u{627}",
        "\u{202e}",
        "\u{1f600}",
        "\u{1f468}\u{200d}\u{1f469}",
        "é",
        "ß",
        "\n",
        "\"",
        "\\",
        "eyJ",
        "sk-",
        "AKIA",
        "GB29",
        "-----BEGIN PRIVATE KEY-----",
        "::",
        "+44 ",
        "john@example.com",
        "4111 1111 1111 1111",
    ];
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for round in 0..400 {
        let mut t = String::new();
        if round % 2 == 0 {
            let bytes: Vec<u8> = (0..rng.next() % 200).map(|_| rng.next() as u8).collect();
            t.push_str(&String::from_utf8_lossy(&bytes));
        }
        for _ in 0..rng.next() % 60 {
            t.push_str(alphabet[(rng.next() % alphabet.len() as u64) as usize]);
        }
        let mut v = s.new_vault();
        let (out, _) = s.scrub_text(&t, &mut v).unwrap();
        // Restoring a scrubbed text, whole or streamed in random pieces, never panics either.
        let mut resp_text = out.clone();
        resp_text.push_str(&t);
        let mut r = EventRestorer::new();
        let mut evs = Vec::new();
        let mut rest = resp_text.as_str();
        while !rest.is_empty() {
            let mut cut = (rng.next() % 7) as usize + 1;
            while !rest.is_char_boundary(cut.min(rest.len())) {
                cut += 1;
            }
            let cut = cut.min(rest.len());
            r.event(
                &v,
                StreamEvent::TextDelta {
                    choice: (rng.next() % 2) as u32,
                    text: rest[..cut].to_string(),
                },
                &mut evs,
            );
            rest = &rest[cut..];
        }
        r.flush(&v, &mut evs);
    }
}

#[test]
fn scrubs_a_32k_prompt_and_reports_the_time() {
    let t0 = std::time::Instant::now();
    let s = scrubber(r#"{"enabled":true,"default_action":"placeholder","restore":true}"#);
    println!("compiled the matcher in {:?}", t0.elapsed());
    let clean =
        "Plain prose about deployments, retries and budgets, with numbers like 42 and 3.14. "
            .repeat(400);
    let mut v = s.new_vault();
    let t0 = std::time::Instant::now();
    let (_, d) = s.scrub_text(&clean, &mut v).unwrap();
    println!(
        "scanned {} PII-free bytes in {:?} ({} detections)",
        clean.len(),
        t0.elapsed(),
        d.total()
    );
    let mut prompt = String::new();
    let para = "The customer Jane Roe (jane.roe@example.com, +44 20 7946 0958) reported that order \
                ORD-2024-001234 failed on 2024-03-15 at 10:32:07Z with build 1.4.2. Her card \
                4111 1111 1111 1111 was charged €1,299.00; IBAN DE89 3704 0044 0532 0130 00. \
                Logs show 192.168.10.24 and fe80::1ff:fe23:4567:890a; trace id \
                550e8400-e29b-41d4-a716-446655440000, sha 3f9a1c2b7d8e9f00aa11bb22cc33dd44ee55ff66.\n\
                fn main() { let retries = 3; let timeout_ms = 15000; println!(\"{}\", retries); }\n\
                Überprüfung läuft — 请稍候 — مرحبا 🚀 naïve café.\n";
    while prompt.len() < 32 * 1024 {
        prompt.push_str(para);
    }
    let mut req = chat(&[&prompt]);
    let mut v = s.new_vault();
    let t0 = std::time::Instant::now();
    let det = s.scrub_request(&mut req, &mut v).unwrap();
    let dt = t0.elapsed();
    println!(
        "scrubbed {} bytes in {:?} ({} detections)",
        prompt.len(),
        dt,
        det.total()
    );
    let out = &texts(&req)[0];
    assert!(!out.contains("jane.roe@example.com"));
    assert!(!out.contains("4111 1111 1111 1111"));
    assert!(
        out.contains("ORD-2024-001234") && out.contains("550e8400-e29b-41d4-a716-446655440000")
    );
}

fn reasoning(text: &str, signature: Option<&str>) -> Part {
    Part::Reasoning {
        text: text.into(),
        signature: signature.map(Into::into),
        redacted: None,
        id: None,
        origin: signature.map(|_| crate::ir::Origin::Anthropic),
    }
}

#[test]
fn signed_reasoning_goes_back_byte_for_byte_or_not_at_all() {
    let s = scrubber(r#"{"enabled":true,"default_action":"placeholder","restore":true}"#);
    let mut asst = Message::text(Role::Assistant, "ok");
    asst.content = vec![
        // What the provider wrote, placeholders and all: sent back unchanged.
        reasoning("about <EMAIL_1>, signed", Some("sig-1")),
        // A signed block holding something a detector finds: removed, never rewritten.
        reasoning("mail ann@example.com", Some("sig-2")),
        // Unsigned reasoning is text like any other.
        reasoning("unsigned bob@example.com", None),
        Part::Text { text: "ok".into() },
    ];
    asst.refusal = Some("not for carl@example.com".into());
    let mut req = Request::Chat(ChatRequest {
        model: "m".into(),
        messages: vec![Message::text(Role::User, "I am dan@example.com"), asst],
        ..Default::default()
    });
    let mut v = s.new_vault();
    s.scrub_request(&mut req, &mut v).unwrap();
    let Request::Chat(c) = &req else {
        unreachable!()
    };
    let content = &c.messages[1].content;
    assert_eq!(
        content[..2],
        [
            reasoning("about <EMAIL_1>, signed", Some("sig-1")),
            reasoning("unsigned <EMAIL_2>", None),
        ]
    );
    assert_eq!(content.len(), 3);
    assert_eq!(c.messages[1].refusal.as_deref(), Some("not for <EMAIL_3>"));
    assert!(!serde_json::to_string(&req).unwrap().contains("ann@"));
}

#[test]
fn answers_restore_refusals_but_leave_reasoning_as_the_provider_wrote_it() {
    let s = scrubber(r#"{"enabled":true,"default_action":"placeholder","restore":true}"#);
    let mut v = s.new_vault();
    s.scrub_request(&mut chat(&["I am john@example.com"]), &mut v)
        .unwrap();
    let mut message = Message::text(Role::Assistant, "hi <EMAIL_1>");
    message
        .content
        .insert(0, reasoning("<EMAIL_1> asked", Some("sig")));
    message.refusal = Some("no, <EMAIL_1>".into());
    let mut resp = Response::Chat(ChatResponse {
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: FinishReason::Stop,
        }],
        ..Default::default()
    });
    v.restore_response(&mut resp);
    let Response::Chat(c) = &resp else {
        unreachable!()
    };
    let m = &c.choices[0].message;
    assert_eq!(m.content[0], reasoning("<EMAIL_1> asked", Some("sig")));
    assert_eq!(m.joined_text(), "hi john@example.com");
    assert_eq!(m.refusal.as_deref(), Some("no, john@example.com"));
    // Streamed: a refusal's placeholder split across deltas is restored; reasoning is not.
    let mut r = EventRestorer::new();
    let mut out = Vec::new();
    for ev in [
        StreamEvent::ReasoningDelta {
            choice: 0,
            text: "<EMAIL_1>".into(),
        },
        StreamEvent::RefusalDelta {
            choice: 0,
            text: "no, <EMA".into(),
        },
        StreamEvent::RefusalDelta {
            choice: 0,
            text: "IL_1>".into(),
        },
    ] {
        r.event(&v, ev, &mut out);
    }
    r.flush(&v, &mut out);
    let refusal: String = out
        .iter()
        .filter_map(|e| match e {
            StreamEvent::RefusalDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(refusal, "no, john@example.com");
    assert_eq!(
        out[0],
        StreamEvent::ReasoningDelta {
            choice: 0,
            text: "<EMAIL_1>".into()
        }
    );
}

#[test]
fn the_scan_budget_refuses_or_forwards_what_it_cannot_scan() {
    // The first text (12 bytes and one candidate, 76 units) fits, the second does not.
    let block = scrubber(r#"{"enabled":true,"scan_budget":100}"#);
    let mut req = chat(&["mail a@x.com", &"z".repeat(60)]);
    let mut v = block.new_vault();
    assert_eq!(
        block.scrub_request(&mut req, &mut v),
        Err(Blocked::Budget { limit: 100 })
    );
    let forward = scrubber(r#"{"enabled":true,"scan_budget":100,"on_scan_budget":"forward"}"#);
    let mut req = chat(&["mail a@x.com", &format!("{} b@x.com", "z".repeat(60))]);
    let mut v = forward.new_vault();
    let found = forward.scrub_request(&mut req, &mut v).unwrap();
    assert!(found.scan_budget_spent);
    assert_eq!(found.counts, vec![("email".to_string(), 1)]);
    assert_eq!(texts(&req)[0], "mail [EMAIL]");
    assert!(texts(&req)[1].ends_with(" b@x.com"), "left unscanned");
    // Within budget nothing is reported.
    let mut req = chat(&["mail a@x.com"]);
    assert!(
        !forward
            .scrub_request(&mut req, &mut v)
            .unwrap()
            .scan_budget_spent
    );
}

#[test]
fn candidates_count_against_the_scan_budget_beyond_their_bytes() {
    // 40 dotted quads that all fail validation: 480 bytes, but 40 candidates on top.
    let text = "1.1.1.1.".repeat(60);
    let s = scrubber(&format!(
        r#"{{"enabled":true,"scan_budget":{}}}"#,
        text.len() + 64 * 4
    ));
    let mut v = s.new_vault();
    assert_eq!(
        s.scrub_text(&text, &mut v).unwrap_err(),
        Blocked::Budget {
            limit: text.len() + 64 * 4
        }
    );
    let s = scrubber(&format!(
        r#"{{"enabled":true,"scan_budget":{}}}"#,
        text.len() + 64 * 200
    ));
    assert!(s.scrub_text(&text, &mut v).is_ok());
}

#[test]
fn custom_patterns_must_have_a_bounded_length() {
    let err = |re: &str| {
        Scrubber::compile(&cfg(&format!(
            r#"{{"custom":[{{"name":"c","regex":"{re}","action":"redact"}}]}}"#
        )))
        .err()
        .map(|e| e.field)
    };
    assert_eq!(err("EMP-[0-9]+").as_deref(), Some("pii.custom[0].regex"));
    assert_eq!(err("[a-z]{1,2000}").as_deref(), Some("pii.custom[0].regex"));
    assert_eq!(err("EMP-[0-9]{6}"), None);
}

#[test]
fn user_ids_stop_sequences_and_argument_keys_are_scrubbed() {
    let s = scrubber(r#"{"enabled":true}"#);
    let mut assistant = Message::text(Role::Assistant, "");
    assistant.tool_calls = vec![ToolCall {
        id: "c1".into(),
        name: "lookup".into(),
        arguments: r#"{"jane@example.com":{"a@x.com":1,"b@x.com":2},"city":"Paris"}"#.into(),
    }];
    let mut req = Request::Chat(ChatRequest {
        model: "m".into(),
        messages: vec![Message::text(Role::User, "hi"), assistant],
        user: Some("jane@example.com".into()),
        stop: vec!["call +1 415 555 2671".into()],
        ..Default::default()
    });
    let mut v = s.new_vault();
    let found = s.scrub_request(&mut req, &mut v).unwrap();
    let Request::Chat(c) = &req else { panic!() };
    assert_eq!(c.user.as_deref(), Some("[EMAIL]"));
    assert_eq!(c.stop, vec!["call [PHONE]".to_string()]);
    let args: serde_json::Value =
        serde_json::from_str(&c.messages[1].tool_calls[0].arguments).unwrap();
    // Keys redacted alike stay apart.
    assert_eq!(
        args,
        serde_json::json!({"[EMAIL]": {"[EMAIL]": 1, "[EMAIL]_2": 2}, "city": "Paris"})
    );
    assert_eq!(
        found.counts,
        vec![("email".to_string(), 4), ("phone".to_string(), 1)]
    );
    let mut emb = Request::Embeddings(EmbeddingsRequest {
        model: "m".into(),
        input: vec!["x".into()],
        user: Some("jane@example.com".into()),
        ..Default::default()
    });
    s.scrub_request(&mut emb, &mut v).unwrap();
    let Request::Embeddings(e) = &emb else {
        panic!()
    };
    assert_eq!(e.user.as_deref(), Some("[EMAIL]"));
}

/// A client that types weir's placeholder syntax (or quotes an unrestored answer) must not get a
/// real value back in its place: its text is escaped into the vault under another number, and
/// restoring gives back exactly what each side wrote.
#[test]
fn placeholders_the_client_typed_are_restored_as_typed_never_as_a_real_value() {
    let s = scrubber(r#"{"enabled":true,"default_action":"placeholder","restore":true}"#);
    let mut req = chat(&[
        "Template: dear <EMAIL_1>, reach <PHONE_2> or <OTHER_1>",
        "My address is john@example.com",
    ]);
    let mut v = s.new_vault();
    let det = s.scrub_request(&mut req, &mut v).unwrap();
    assert_eq!(
        texts(&req),
        [
            "Template: dear <EMAIL_1>, reach <PHONE_1> or <OTHER_1>",
            "My address is <EMAIL_2>"
        ]
    );
    // Only the real address is a detection.
    assert_eq!(det.counts, vec![("email".to_string(), 1)]);
    assert!(s.detect("dear <EMAIL_1>").is_empty());
    assert_eq!(
        restored_text(&v, "<EMAIL_1> / <PHONE_1> / <EMAIL_2>"),
        "<EMAIL_1> / <PHONE_2> / john@example.com"
    );

    // Streams restore the same way, however the deltas split the text.
    let out = run_stream(
        &v,
        vec![
            StreamEvent::TextDelta {
                choice: 0,
                text: "<EMA".into(),
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "IL_1> and <EMAIL_2>".into(),
            },
        ],
    );
    assert_eq!(text_of(&out, 0), "<EMAIL_1> and john@example.com");

    // Without restore nothing is ever put back, so the client's text passes as written.
    let plain = scrubber(r#"{"enabled":true,"default_action":"placeholder"}"#);
    assert_eq!(
        scrub1(&plain, "dear <EMAIL_1>, a@b.co"),
        "dear <EMAIL_1>, <EMAIL_1>"
    );
}

#[test]
fn one_request_cannot_take_the_whole_vault_budget() {
    let s = scrubber(
        r#"{"enabled":true,"default_action":"placeholder","restore":true,"vault_max_bytes_per_request":400}"#,
    );
    let many: Vec<String> = (0..20).map(|i| format!("user{i}@example.com")).collect();
    let mut greedy = s.new_vault();
    let (out, det) = s.scrub_text(&many.join(" "), &mut greedy).unwrap();
    assert!(greedy.charged_bytes() <= 400);
    assert!(det.fallback_redactions >= 15, "{det:?}");
    assert!(
        out.starts_with("<EMAIL_1> <EMAIL_2>") && out.ends_with("[EMAIL]"),
        "{out}"
    );
    assert!(!out.contains("example.com"));
    // Another request on the same VM still gets placeholders.
    let mut next = s.new_vault();
    assert_eq!(scrub_with(&s, &mut next, "a@x.com"), "<EMAIL_1>");

    let err = Scrubber::compile(&cfg(
        r#"{"vault_max_bytes":1000,"vault_max_bytes_per_request":2000}"#,
    ))
    .unwrap_err();
    assert_eq!(err.field, "pii.vault_max_bytes_per_request");
}

/// An answer of `text` with `v`'s placeholders restored.
fn restored_text(v: &Vault, text: &str) -> String {
    let mut resp = Response::Chat(ChatResponse {
        id: "r".into(),
        model: "m".into(),
        created: 0,
        choices: vec![Choice {
            index: 0,
            message: Message::text(Role::Assistant, text),
            finish_reason: FinishReason::Stop,
        }],
        usage: None,
    });
    v.restore_response(&mut resp);
    match resp {
        Response::Chat(c) => c.choices[0].message.joined_text(),
        _ => unreachable!(),
    }
}

fn scrub_with(s: &Scrubber, v: &mut Vault, text: &str) -> String {
    s.scrub_text(text, v).unwrap().0
}

/// Full-width and zero-width disguises (`fold.rs`): found, and replaced in the original.
#[test]
fn disguised_values_are_found_and_their_original_span_replaced() {
    let s = scrubber(r#"{"enabled":true}"#);
    let fw_mail = "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ";
    assert_eq!(
        detected(&s, &format!("メール：{fw_mail}　です")),
        [("email".to_string(), fw_mail.to_string())]
    );
    // The text around the value keeps its own characters (full-width colon, ideographic space).
    assert_eq!(
        scrub1(&s, &format!("メール：{fw_mail}　です")),
        "メール：[EMAIL]　です"
    );
    // Invisible characters inside a value go with it; those at its edges stay.
    assert_eq!(
        scrub1(&s, "mail \u{200b}j\u{200b}ohn@exa\u{200b}mple.com\u{200d}!"),
        "mail \u{200b}[EMAIL]\u{200d}!"
    );
    assert_eq!(
        scrub1(&s, "card ４１１１ １１１１ １１１１ １１１１ ok"),
        "card [CREDIT_CARD] ok"
    );
    assert_eq!(
        scrub1(&s, "card 4111\u{200b}1111\u{feff}1111\u{ad}1111 ok"),
        "card [CREDIT_CARD] ok"
    );
    // Not a disguise: other non-ASCII text is scanned as it is, and left as it is.
    assert_eq!(scrub1(&s, "Grüße ① ½ ok"), "Grüße ① ½ ok");
    assert_eq!(scrub1(&s, "ｏｋ\u{200b}"), "ｏｋ\u{200b}");
}

#[test]
fn a_disguised_value_gets_the_placeholder_mask_and_hash_of_its_plain_form_and_comes_back_as_sent() {
    let s = scrubber(r#"{"enabled":true,"default_action":"placeholder","restore":true}"#);
    let mut req = chat(&[
        "mail ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        "or jo\u{200b}hn@example.com or john@example.com",
    ]);
    let mut v = s.new_vault();
    s.scrub_request(&mut req, &mut v).unwrap();
    assert_eq!(texts(&req), ["mail <EMAIL_1>", "or <EMAIL_1> or <EMAIL_1>"]);
    // Restore puts back what the client sent, the first form seen (see docs/pii.md).
    assert_eq!(
        v.lookup("<EMAIL_1>"),
        Some("ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ")
    );

    let m = scrubber(r#"{"enabled":true,"default_action":"mask","hmac_secret":"k"}"#);
    assert_eq!(
        scrub1(&m, "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
        "j***@example.com"
    );
    let h = scrubber(r#"{"enabled":true,"default_action":"hash","hmac_secret":"k"}"#);
    assert_eq!(
        scrub1(&h, "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
        scrub1(&h, "john@example.com")
    );
    // The allow list sees the plain form too.
    let a = scrubber(r#"{"enabled":true,"allow":["john@example.com"]}"#);
    assert_eq!(
        scrub1(&a, "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
        "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ"
    );
}

#[test]
fn the_scan_budget_charges_the_folded_length() {
    // 1,000 zero-width spaces (3,000 bytes) fold away: only the 12 bytes left are scanned.
    let text = format!("{}mail a@x.com", "\u{200b}".repeat(1000));
    let s = scrubber(r#"{"enabled":true,"scan_budget":100}"#);
    let mut v = s.new_vault();
    assert!(scrub1(&s, &text).ends_with("mail [EMAIL]"));
    // Full-width text is charged per folded byte (1, not 3): 30 digits fit, 101 do not.
    assert!(s.scrub_text(&"１".repeat(30), &mut v).is_ok());
    assert_eq!(
        s.scrub_text(&"１".repeat(101), &mut v).unwrap_err(),
        Blocked::Budget { limit: 100 }
    );
}

/// Random texts of values, disguises and separators: spans always fall on the original's
/// character boundaries, and placeholders put back give the text as scanned (nothing lost,
/// nothing moved), whatever the invisible and full-width characters around and inside values.
#[test]
fn disguised_texts_round_trip_through_placeholders() {
    let s = scrubber(r#"{"enabled":true,"default_action":"placeholder","restore":true}"#);
    let alphabet = [
        "\u{200b}",
        "\u{feff}",
        "\u{ad}",
        "\u{3000}",
        "＠",
        "．",
        "１",
        "４",
        "ｊ",
        "－",
        "a",
        "4",
        "1",
        "0",
        " ",
        "-",
        ".",
        "@",
        "+",
        "é",
        "用",
        "ü",
        "tel ",
        "ext ",
        "DE89",
        "john@x.com",
        "4111 1111 1111 1111",
        "+44 20 7946 0958",
        "030/1234567-89",
        "ｊｏｈｎ＠ｘ．ｃｏｍ",
    ];
    // A value typed two ways shares the first form's placeholder, so only the folded texts match.
    let plain = |t: &str| super::fold::fold(t).unwrap_or_else(|| t.to_string());
    let mut rng = Rng(0xd15_9015e);
    for _ in 0..2000 {
        let t: String = (0..rng.next() % 40)
            .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
            .collect();
        for sp in s.detect(&t) {
            assert!(t.get(sp.start..sp.end).is_some(), "{t:?} {sp:?}");
        }
        let mut v = s.new_vault();
        let (out, _) = s.scrub_text(&t, &mut v).unwrap();
        let mut restored = String::new();
        let mut rest = out.as_str();
        while let Some(open) = rest.find('<') {
            let close = rest[open..].find('>').map(|c| open + c + 1).unwrap();
            restored.push_str(&rest[..open]);
            restored.push_str(v.lookup(&rest[open..close]).unwrap());
            rest = &rest[close..];
        }
        restored.push_str(rest);
        assert_eq!(plain(&restored), plain(&t), "{t:?} -> {out:?}");
    }
}
