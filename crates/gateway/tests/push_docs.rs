//! Checks docs/push.md against the code: every ```toml block loads with the gateway's own
//! loader (`GatewayConfig::from_file`, what `opencharge gateway --config` runs) and validates,
//! the blocks together set every key of `[push]`, `[push.fcm]` and `[push.apns]`, and the JSON
//! examples of the wake-up, the FCM body and the APNs body match the wire types.

use std::collections::BTreeSet;
use std::path::PathBuf;

use opencharge_gateway::config::{ApnsConfig, FcmConfig, PushConfig};
use opencharge_gateway::GatewayConfig;
use opencharge_protocol::app::{PushKind, PushWakeUp, PUSH_PAYLOAD_KEY};

/// The page, read from the repository.
fn doc() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/push.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The fenced blocks of `lang` as (line of the opening fence, text).
fn blocks(doc: &str, lang: &str) -> Vec<(usize, String)> {
    let fence = format!("```{lang}");
    let mut found = Vec::new();
    let mut current: Option<(usize, Vec<&str>)> = None;
    for (index, line) in doc.lines().enumerate() {
        let trimmed = line.trim();
        match current.as_mut() {
            None if trimmed == fence => current = Some((index + 1, Vec::new())),
            None => {}
            Some(_) if trimmed == "```" => {
                let (start, body) = current.take().expect("inside a block");
                found.push((start, body.join("\n")));
            }
            Some((_, body)) => body.push(line),
        }
    }
    assert!(
        current.is_none(),
        "docs/push.md ends inside a ```{lang} block"
    );
    found
}

/// Dotted paths of the keys that hold values (not tables) in `value`
/// (`push.fcm.project_id`, `push.retry_secs`, ...).
fn key_paths(prefix: &str, value: &toml::Value, into: &mut BTreeSet<String>) {
    if let toml::Value::Table(table) = value {
        for (key, inner) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if inner.is_table() {
                key_paths(&path, inner, into);
            } else {
                into.insert(path);
            }
        }
    }
}

#[test]
fn every_toml_block_is_a_valid_gateway_config_and_all_push_keys_are_shown() {
    let doc = doc();
    let tomls = blocks(&doc, "toml");
    assert!(
        tomls.len() >= 3,
        "expected the production, [push] and loopback examples"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let mut shown = BTreeSet::new();
    let mut with_fcm = 0;
    let mut with_apns = 0;
    for (line, text) in &tomls {
        let file = dir.path().join(format!("push-md-line-{line}.toml"));
        std::fs::write(&file, text).expect("write the block");
        let config = GatewayConfig::from_file(&file)
            .unwrap_or_else(|e| panic!("docs/push.md:{line}: the ```toml block is refused: {e}"));
        with_fcm += usize::from(config.push.fcm.is_some());
        with_apns += usize::from(config.push.apns.is_some());
        let value: toml::Value = toml::from_str(text).expect("parsed once already");
        key_paths("", &value, &mut shown);
    }
    assert!(
        with_fcm >= 2 && with_apns >= 2,
        "production and loopback examples of both providers"
    );

    // Every key the config types have, from the types themselves (all options set).
    let full = PushConfig {
        fcm: Some(FcmConfig {
            project_id: "p".into(),
            service_account_file: "sa.json".into(),
            endpoint: Some("https://fcm.example".into()),
        }),
        apns: Some(ApnsConfig {
            team_id: "t".into(),
            key_id: "k".into(),
            key_file: "k.p8".into(),
            topic: "com.example".into(),
            endpoint: Some("https://apns.example".into()),
            ca_file: Some("ca.pem".into()),
        }),
        ..PushConfig::default()
    };
    let mut all = BTreeSet::new();
    key_paths(
        "push",
        &toml::Value::try_from(&full).expect("PushConfig serialises"),
        &mut all,
    );
    let missing: Vec<_> = all.difference(&shown).collect();
    assert!(
        missing.is_empty(),
        "docs/push.md shows no example of {missing:?}"
    );
    for key in &all {
        assert!(
            doc.contains(&format!("`{key}`")),
            "docs/push.md's key table does not name `{key}`"
        );
    }
}

#[test]
fn the_documented_dev_only_rules_hold() {
    let doc = doc();
    let tomls = blocks(&doc, "toml");
    // The loopback example: its endpoints and CA are accepted only because of dev_mode.
    let (line, loopback) = tomls
        .iter()
        .find(|(_, text)| text.contains("ca_file"))
        .expect("a loopback example with ca_file");
    let without_dev = loopback.replace("dev_mode = true", "dev_mode = false");
    let config: GatewayConfig = toml::from_str(&without_dev).expect("still parses");
    let err = config
        .validate()
        .expect_err("ca_file and loopback endpoints need dev_mode")
        .to_string();
    assert!(
        err.contains("dev_mode"),
        "docs/push.md:{line}: refused for another reason: {err}"
    );
    // The production example names no endpoint and no CA: the real services, system roots.
    let (line, production) = tomls
        .iter()
        .find(|(_, text)| text.contains("[push.fcm]") && !text.contains("dev_mode"))
        .expect("a production example");
    let config: GatewayConfig = toml::from_str(production).expect("parses");
    assert!(!config.dev_mode, "docs/push.md:{line}");
    let fcm = config.push.fcm.expect("fcm");
    let apns = config.push.apns.expect("apns");
    assert_eq!(
        (fcm.endpoint, apns.endpoint, apns.ca_file),
        (None, None, None)
    );
    // The [push] example shows the defaults it says it shows.
    let (line, push_only) = tomls
        .iter()
        .find(|(_, text)| text.trim_start().starts_with("[push]"))
        .expect("a [push] example");
    let config: GatewayConfig = toml::from_str(push_only).expect("parses");
    let defaults = PushConfig::default();
    assert_eq!(
        (config.push.retry_secs, config.push.max_age_secs),
        (defaults.retry_secs, defaults.max_age_secs),
        "docs/push.md:{line}: the [push] example says it shows the defaults"
    );
}

#[test]
fn the_json_examples_match_the_wire_types() {
    let doc = doc();
    let jsons = blocks(&doc, "json");
    let mut wake_ups = 0;
    let mut fcm = 0;
    let mut apns = 0;
    for (line, text) in &jsons {
        let value: serde_json::Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("docs/push.md:{line}: not JSON: {e}"));
        let wake = if let Some(message) = value.get("message") {
            fcm += 1;
            let android = &message["android"];
            assert_eq!(android["priority"], "HIGH", "docs/push.md:{line}");
            assert_eq!(android["collapse_key"], "opencharge", "docs/push.md:{line}");
            let ttl = format!("{}s", PushConfig::default().max_age_secs);
            assert_eq!(android["ttl"], ttl.as_str(), "docs/push.md:{line}");
            assert!(message.get("notification").is_none(), "a data message");
            message["data"].clone()
        } else if let Some(aps) = value.get("aps") {
            apns += 1;
            assert_eq!(aps["mutable-content"], 1, "docs/push.md:{line}");
            assert_eq!(
                aps["alert"]["title"], "Payment request",
                "docs/push.md:{line}"
            );
            value[PUSH_PAYLOAD_KEY].clone()
        } else {
            value
        };
        let fields: BTreeSet<&str> = wake
            .as_object()
            .unwrap_or_else(|| panic!("docs/push.md:{line}: the wake-up is not an object"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            BTreeSet::from(["eventId", "sessionId", "type"]),
            "docs/push.md:{line}: a wake-up carries these three fields and nothing else"
        );
        let wake: PushWakeUp = serde_json::from_value(wake)
            .unwrap_or_else(|e| panic!("docs/push.md:{line}: not a PushWakeUp: {e}"));
        assert_eq!(wake.kind, PushKind::PaymentRequest);
        wake_ups += 1;
    }
    assert_eq!(
        (wake_ups, fcm, apns),
        (3, 1, 1),
        "the wake-up, the FCM body, the APNs body"
    );
}
