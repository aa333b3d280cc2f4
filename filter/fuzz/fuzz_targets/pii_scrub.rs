//! The PII scrubber (`Scrubber::scrub_text`) with every built-in detector set to `placeholder`
//! and restore on, then the placeholder restorer on the scrubbed text (whole and as a stream
//! split at a fuzzer-chosen point). Checks: nothing panics, and the vault budget is released.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use weir_core::ir::{ChatResponse, Choice, FinishReason, Message, Response, Role, StreamEvent};
use weir_core::pii::{EventRestorer, PiiConfig, Scrubber};
use weir_fuzz::Input;

fn scrubber() -> &'static Scrubber {
    static S: OnceLock<Scrubber> = OnceLock::new();
    S.get_or_init(|| {
        let cfg: PiiConfig = serde_json::from_value(serde_json::json!({
            "enabled": true,
            "default_action": "placeholder",
            "restore": true,
            "vault_max_bytes": 4096,
        }))
        .expect("pii config");
        Scrubber::compile(&cfg).expect("compile")
    })
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let split = usize::from(input.u16());
    let Ok(text) = std::str::from_utf8(input.data) else {
        return;
    };
    let s = scrubber();
    {
        let mut vault = s.new_vault();
        let Ok((scrubbed, _det)) = s.scrub_text(text, &mut vault) else {
            return;
        };
        let mut resp = Response::Chat(ChatResponse {
            choices: vec![Choice {
                index: 0,
                message: Message::text(Role::Assistant, scrubbed.clone()),
                finish_reason: FinishReason::Stop,
            }],
            ..Default::default()
        });
        vault.restore_response(&mut resp);

        let mut at = split % (scrubbed.len() + 1);
        while !scrubbed.is_char_boundary(at) {
            at -= 1;
        }
        let (x, y) = scrubbed.split_at(at);
        let mut r = EventRestorer::new();
        let mut out = Vec::new();
        for part in [x, y] {
            r.event(
                &vault,
                StreamEvent::TextDelta {
                    choice: 0,
                    text: part.into(),
                },
                &mut out,
            );
        }
        r.flush(&vault, &mut out);
        let restored: String = out
            .iter()
            .filter_map(|e| match e {
                StreamEvent::TextDelta { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        // Streamed restore must agree with restoring the complete answer.
        if let Response::Chat(c) = &resp {
            assert_eq!(
                restored,
                c.choices[0].message.joined_text(),
                "stream/whole restore differ"
            );
        }
    }
    assert_eq!(s.vault_bytes_in_use(), 0, "a dropped vault kept budget");
});
