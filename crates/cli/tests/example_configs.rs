//! `examples/gateway.toml` and `examples/merchant.toml` load with the real config parsers and
//! describe the by-hand setup of the README: loopback listeners on 8700 and 8710, dev mode on,
//! persistent key and database files, and each party in the other's directory (the merchant
//! also accepting the gateway's proofs), so a payment between them can happen.

use std::path::{Path, PathBuf};

use opencharge_gateway::GatewayConfig;
use opencharge_merchant::MerchantConfig;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

#[test]
fn the_example_configs_load_and_know_each_other() {
    let gateway = GatewayConfig::from_file(&example("gateway.toml")).unwrap();
    let merchant = MerchantConfig::from_file(&example("merchant.toml")).unwrap();

    for (who, listen, port) in [
        ("gateway", gateway.listen, 8700),
        ("merchant", merchant.listen, 8710),
    ] {
        assert!(listen.ip().is_loopback(), "{who} listens on {listen}");
        assert_eq!(listen.port(), port, "{who}");
    }
    assert!(gateway.dev_mode && gateway.allow_loopback_http);
    assert!(merchant.dev_mode && merchant.allow_loopback_http);
    // A persistent identity beside a persistent database.
    assert!(gateway.key_file.is_some());
    assert!(
        gateway
            .database
            .sqlite_path()
            .is_some_and(|p| p.is_relative())
            && merchant.database.is_relative()
    );

    let endpoint = |listen: std::net::SocketAddr, base: &str| format!("http://{listen}{base}");
    let merchant_metadata = format!(
        "{}/metadata.json",
        endpoint(merchant.listen, &merchant.base_path)
    );
    let gateway_metadata = format!(
        "{}/metadata.json",
        endpoint(gateway.listen, &gateway.base_path)
    );
    let in_gateway = gateway
        .directory
        .iter()
        .find(|e| e.ocid == merchant.ocid)
        .expect("the gateway's directory names the merchant");
    assert_eq!(
        in_gateway.metadata_url.as_deref(),
        Some(merchant_metadata.as_str())
    );
    let in_merchant = merchant
        .directory
        .iter()
        .find(|e| e.ocid == gateway.ocid)
        .expect("the merchant's directory names the gateway");
    assert_eq!(in_merchant.metadata_url, gateway_metadata);
    assert!(merchant.accepts.contains(&gateway.ocid));
    assert!(gateway.currencies.iter().any(|c| c == "USD"));
    assert!(merchant.currencies.iter().any(|c| c == "USD"));
}

#[test]
fn every_key_of_the_examples_is_commented() {
    for name in ["gateway.toml", "merchant.toml"] {
        let text = std::fs::read_to_string(example(name)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || !line.contains(" = ") {
                continue;
            }
            // A key is explained by the comment above it, or belongs to a table (or a run of
            // keys) that is.
            let mut j = i;
            let explained = loop {
                if j == 0 {
                    break false;
                }
                j -= 1;
                let above = lines[j].trim();
                if above.starts_with('#') {
                    break true;
                }
                if above.is_empty() {
                    break false;
                }
            };
            assert!(explained, "{name}:{}: {line:?} has no comment", i + 1);
        }
    }
}
