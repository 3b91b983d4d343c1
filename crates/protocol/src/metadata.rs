//! Opencharge metadata documents (`/metadata.json`): the wire types, and a tolerant parser that
//! reads every published layout (config-nested, old flat, end-user) while emitting only the
//! config-nested one; [`verify_document`] also checks the config signature, and
//! [`document_url`] applies the resolver's URL rule.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ProtocolError, Result};
use crate::keys::{PublicKey, VerifyOptions};
use crate::signing::verify_config;

/// Largest metadata document [`Metadata::parse`] accepts, in bytes (64 KiB).
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// A metadata document in the current config-nested layout (§2.3). This is the only layout
/// this crate emits. Deserialising it directly reads the config-nested and end-user layouts
/// (with `description` accepted for `profile`); use [`Metadata::parse`] to also read the old
/// flat layout and to keep the raw config for signature verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "MetadataRepr")]
pub struct Metadata {
    /// Protocol version string, `"0.1"`.
    pub opencharge: String,
    /// Display name.
    pub name: String,
    /// Description. Read from `profile`, or from the older `description` when `profile` is
    /// absent; always emitted as `profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Icon URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// The signed, payment-critical part.
    pub config: MetadataConfig,
    /// OCIDs of the KYC providers this service accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kyc: Option<Vec<u64>>,
    /// Signature over the canonical `config`. Empty for a document read from the unsigned flat
    /// layout (see [`ParsedMetadata::signed`]).
    pub signature: String,
    /// Contact: email, URL or social handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

/// Input shape of [`Metadata`]: the same fields plus the legacy `description`.
#[derive(Deserialize)]
struct MetadataRepr {
    opencharge: String,
    name: String,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    icon: Option<String>,
    config: MetadataConfig,
    #[serde(default)]
    kyc: Option<Vec<u64>>,
    signature: String,
    #[serde(default)]
    contact: Option<String>,
}

impl From<MetadataRepr> for Metadata {
    fn from(r: MetadataRepr) -> Self {
        Metadata {
            opencharge: r.opencharge,
            name: r.name,
            profile: r.profile.or(r.description),
            icon: r.icon,
            config: r.config,
            kyc: r.kyc,
            signature: r.signature,
            contact: r.contact,
        }
    }
}

/// The signed `config` object of a metadata document.
///
/// `extra` keeps every field this crate does not know (e.g. a non-standard `previousKey` or
/// `fees`) so a parsed config serialises back with them: the config signature covers the whole
/// object, unknown fields included. Even so, verify the signature over
/// [`ParsedMetadata::raw_config`], not over a re-serialised value (see that field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataConfig {
    /// The service's public key as published (normally 128 hex, X‖Y without `04`; see `keys`).
    pub public_key: String,
    /// Base URL of the Opencharge API. Absent for end-user OCIDs, which have no API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Capability strings (see `types::capability`). Unknown strings are kept. Empty when
    /// absent (end users) and then not emitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Settlement currencies and accepted proof issuers, if the service accepts settlement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement: Option<Settlement>,
    /// Unknown config fields, preserved because the config signature covers them. Must not
    /// repeat a named field's key.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a service settles: `{currencies, accepts}`. Also the `settlement` of a
/// `/capabilities` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// ISO 4217 currency codes.
    pub currencies: Vec<String>,
    /// OCIDs whose proofs this service accepts. Read from integers or from the old
    /// `{ocid, name}` objects (the name is dropped); always emitted as integers.
    #[serde(deserialize_with = "deserialize_accepts")]
    pub accepts: Vec<u64>,
}

/// One `accepts` entry: an integer OCID, or an old `{ocid, name}` object.
struct AcceptsEntry(u64);

impl<'de> Deserialize<'de> for AcceptsEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct EntryVisitor;

        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = AcceptsEntry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an OCID (non-negative integer) or an {\"ocid\", \"name\"} object")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<AcceptsEntry, E> {
                Ok(AcceptsEntry(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<AcceptsEntry, E> {
                u64::try_from(v)
                    .map(AcceptsEntry)
                    .map_err(|_| E::custom(format!("settlement.accepts: OCID {v} is negative")))
            }

            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<AcceptsEntry, A::Error> {
                let mut ocid: Option<u64> = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "ocid" {
                        if ocid.is_some() {
                            return Err(de::Error::duplicate_field("ocid"));
                        }
                        ocid = Some(map.next_value()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                ocid.map(AcceptsEntry)
                    .ok_or_else(|| de::Error::missing_field("ocid"))
            }
        }

        deserializer.deserialize_any(EntryVisitor)
    }
}

fn deserialize_accepts<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Vec<u64>, D::Error> {
    struct AcceptsVisitor;

    impl<'de> Visitor<'de> for AcceptsVisitor {
        type Value = Vec<u64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of OCIDs")
        }

        fn visit_seq<A: SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> std::result::Result<Vec<u64>, A::Error> {
            // Cap the pre-allocation: the size hint comes from outside data.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(256));
            while let Some(AcceptsEntry(ocid)) = seq.next_element()? {
                out.push(ocid);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_seq(AcceptsVisitor)
}

/// Which published layout a metadata document used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataLayout {
    /// Current layout: `config` object with `publicKey` and `endpoint`, plus `signature`.
    ConfigNested,
    /// Old layout: `publicKey`, `endpoint`, `capabilities`, `settlement` at top level, no
    /// `config`, no `signature`. Unsigned.
    Flat,
    /// End-user layout: `config` holds only `publicKey` (no `endpoint`), plus `signature`.
    EndUser,
}

/// The result of [`Metadata::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMetadata {
    /// The document, normalised to the config-nested model.
    pub metadata: Metadata,
    /// Which layout was received.
    pub layout: MetadataLayout,
    /// Whether the document carries a config signature. False only for the flat layout, whose
    /// "config" was assembled by us and must not be treated as signed.
    pub signed: bool,
    /// The `config` value exactly as received (unknown fields included). The config signature
    /// must be verified over the canonical form of THIS value, never over a re-serialised
    /// [`MetadataConfig`]: a round trip drops `null`s and an explicit empty `capabilities`.
    /// `None` for the flat layout, which has no config object.
    pub raw_config: Option<Value>,
}

impl ParsedMetadata {
    /// The raw config and its signature, when the document is signed; `None` for the flat
    /// layout. This is the input a config-signature verifier needs.
    pub fn signed_config(&self) -> Option<(&Value, &str)> {
        match (&self.raw_config, self.signed) {
            (Some(cfg), true) => Some((cfg, self.metadata.signature.as_str())),
            _ => None,
        }
    }
}

/// Top-level keys of the flat layout that belong in `config`.
const FLAT_CONFIG_KEYS: [&str; 4] = ["publicKey", "endpoint", "capabilities", "settlement"];
/// Flat-layout key-rotation fields, moved into `config.extra` so they are found in one place.
const FLAT_ROTATION_KEYS: [&str; 2] = ["previousKey", "keyRotatedAt"];

/// Input shape of the flat layout's non-config fields.
#[derive(Deserialize)]
struct FlatRepr {
    opencharge: String,
    name: String,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    icon: Option<String>,
    #[serde(default)]
    kyc: Option<Vec<u64>>,
    #[serde(default)]
    contact: Option<String>,
}

fn json_err(e: serde_json::Error) -> ProtocolError {
    ProtocolError::Json(e.to_string())
}

impl Metadata {
    /// Parse a metadata document in any published layout.
    ///
    /// * Rejects input larger than [`MAX_METADATA_BYTES`] and non-object JSON.
    /// * A `config` object with an `endpoint` → [`MetadataLayout::ConfigNested`]; a `config`
    ///   without `endpoint` → [`MetadataLayout::EndUser`]. Both require `signature`.
    /// * No `config` but a top-level `publicKey` → [`MetadataLayout::Flat`], `signed: false`,
    ///   empty `signature`; top-level `previousKey` / `keyRotatedAt` move to `config.extra`.
    /// * `description` is read as `profile` when `profile` is absent.
    ///
    /// Missing required fields give [`ProtocolError::Json`] naming them, e.g.
    /// "missing field `publicKey`". No signature or key-format check happens here.
    pub fn parse(bytes: &[u8]) -> Result<ParsedMetadata> {
        if bytes.len() > MAX_METADATA_BYTES {
            return Err(ProtocolError::Json(format!(
                "metadata document is {} bytes; the limit is {MAX_METADATA_BYTES}",
                bytes.len()
            )));
        }
        let value: Value = serde_json::from_slice(bytes).map_err(json_err)?;
        let Value::Object(mut top) = value else {
            return Err(ProtocolError::Json(
                "metadata document must be a JSON object".into(),
            ));
        };

        if let Some(config) = top.get("config") {
            if !config.is_object() {
                return Err(ProtocolError::InvalidField {
                    field: "config".into(),
                    reason: "must be a JSON object".into(),
                });
            }
            let raw_config = config.clone();
            let layout = if raw_config.get("endpoint").is_some_and(|v| !v.is_null()) {
                MetadataLayout::ConfigNested
            } else {
                MetadataLayout::EndUser
            };
            let metadata: Metadata =
                serde_json::from_value(Value::Object(top)).map_err(json_err)?;
            return Ok(ParsedMetadata {
                metadata,
                layout,
                signed: true,
                raw_config: Some(raw_config),
            });
        }

        if !top.contains_key("publicKey") {
            return Err(ProtocolError::Json(
                "missing field `config` (and no top-level `publicKey` of the old flat layout)"
                    .into(),
            ));
        }
        let mut config = Map::new();
        for key in FLAT_CONFIG_KEYS.iter().chain(&FLAT_ROTATION_KEYS) {
            if let Some(v) = top.remove(*key) {
                config.insert((*key).to_owned(), v);
            }
        }
        let config: MetadataConfig =
            serde_json::from_value(Value::Object(config)).map_err(json_err)?;
        let rest: FlatRepr = serde_json::from_value(Value::Object(top)).map_err(json_err)?;
        Ok(ParsedMetadata {
            metadata: Metadata {
                opencharge: rest.opencharge,
                name: rest.name,
                profile: rest.profile.or(rest.description),
                icon: rest.icon,
                config,
                kyc: rest.kyc,
                signature: String::new(),
                contact: rest.contact,
            },
            layout: MetadataLayout::Flat,
            signed: false,
            raw_config: None,
        })
    }
}

/// A metadata document whose config signature verified: what a party may rely on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedMetadata {
    /// The document, normalised to the config-nested model.
    pub metadata: Metadata,
    /// The key from the verified config: it signs the party's requests, orders and proofs.
    pub public_key: PublicKey,
}

/// Parses a metadata document and verifies its config signature (strict encodings). The old
/// flat layout carries no signature and is rejected, as is a document without a signed config.
pub fn verify_document(bytes: &[u8]) -> Result<VerifiedMetadata> {
    let parsed = Metadata::parse(bytes)?;
    if parsed.layout == MetadataLayout::Flat {
        return Err(ProtocolError::InvalidField {
            field: "config".into(),
            reason: "the unsigned flat layout is not accepted; a signed `config` is required"
                .into(),
        });
    }
    let Some((raw_config, signature)) = parsed.signed_config() else {
        return Err(ProtocolError::InvalidField {
            field: "signature".into(),
            reason: "the document has no signed config".into(),
        });
    };
    let public_key = verify_config(raw_config, signature, VerifyOptions::STRICT)?;
    Ok(VerifiedMetadata {
        metadata: parsed.metadata,
        public_key,
    })
}

/// Applies the resolver rule of protocol notes §7 row 17: a URL whose path ends in `.json` is
/// a metadata document; anything else is an API endpoint and gets `/metadata.json` appended.
pub fn document_url(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((head, q)) => (head, Some(q)),
        None => (url, None),
    };
    if before_query.ends_with(".json") {
        return url.to_string();
    }
    let mut out = format!("{}/metadata.json", before_query.trim_end_matches('/'));
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PK: &str = "bb50e2d89a4ed70663d080659fe0ad4b9bc3e06c17a227433966cb59ceee020decddbf6e00192011648d13b1c00af770c0c1bb609d4d3a5c98a43772e0e18ef4";

    fn nested_doc() -> String {
        json!({
            "opencharge": "0.1",
            "name": "QuickPay Wallet",
            "profile": "Mobile wallet for fast payments",
            "icon": "https://wallet.example/icon.png",
            "config": {
                "publicKey": PK,
                "endpoint": "https://api.wallet.example/opencharge",
                "capabilities": ["checkout.create", "orders.create.session", "transfer.create", "transfer.webhook"],
                "settlement": { "currencies": ["USD", "EUR"], "accepts": [100, 101, 102] }
            },
            "kyc": [540, 737, 2836],
            "signature": "abcd",
            "contact": "dev@wallet.example"
        })
        .to_string()
    }

    #[test]
    fn parses_config_nested_example() {
        let p = Metadata::parse(nested_doc().as_bytes()).unwrap();
        assert_eq!(p.layout, MetadataLayout::ConfigNested);
        assert!(p.signed);
        let m = &p.metadata;
        assert_eq!(m.opencharge, "0.1");
        assert_eq!(m.name, "QuickPay Wallet");
        assert_eq!(
            m.profile.as_deref(),
            Some("Mobile wallet for fast payments")
        );
        assert_eq!(m.config.public_key, PK);
        assert_eq!(
            m.config.endpoint.as_deref(),
            Some("https://api.wallet.example/opencharge")
        );
        assert_eq!(m.config.capabilities.len(), 4);
        let s = m.config.settlement.as_ref().unwrap();
        assert_eq!(s.currencies, vec!["USD", "EUR"]);
        assert_eq!(s.accepts, vec![100, 101, 102]);
        assert_eq!(m.kyc, Some(vec![540, 737, 2836]));
        assert_eq!(m.signature, "abcd");
        assert_eq!(m.contact.as_deref(), Some("dev@wallet.example"));
        let (cfg, sig) = p.signed_config().unwrap();
        assert_eq!(sig, "abcd");
        assert_eq!(cfg["publicKey"], PK);
        // Emitting the parsed document gives back the same JSON value.
        let out = serde_json::to_value(m).unwrap();
        let original: Value = serde_json::from_str(&nested_doc()).unwrap();
        assert_eq!(out, original);
    }

    #[test]
    fn unknown_config_fields_are_preserved_and_raw_config_is_verbatim() {
        let doc = json!({
            "opencharge": "0.1", "name": "X", "signature": "s",
            "config": {"publicKey": PK, "endpoint": "https://x.example/opencharge",
                       "capabilities": [], "fees": {"percent": "1.5"}, "previousKey": "00"},
            "business": {"name": "ignored"}
        });
        let p = Metadata::parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(p.metadata.config.extra["fees"], json!({"percent": "1.5"}));
        assert_eq!(p.metadata.config.extra["previousKey"], "00");
        assert_eq!(p.raw_config.as_ref().unwrap(), &doc["config"]);
        // The explicit empty capabilities list survives in raw_config even though the typed
        // config does not emit it: this is why verification uses raw_config.
        assert_eq!(p.raw_config.as_ref().unwrap()["capabilities"], json!([]));
        let cfg_out = serde_json::to_value(&p.metadata.config).unwrap();
        assert_eq!(cfg_out["fees"], json!({"percent": "1.5"}));
        // Unknown top-level fields are tolerated (not kept: they are not signed).
        assert!(serde_json::to_value(&p.metadata)
            .unwrap()
            .get("business")
            .is_none());
    }

    #[test]
    fn parses_old_flat_layout_as_unsigned() {
        let doc = json!({
            "opencharge": "0.1",
            "name": "Old Bank",
            "description": "Settlement bank",
            "publicKey": PK,
            "endpoint": "https://bank.example/opencharge",
            "capabilities": ["transfer.create", "verify.txid"],
            "settlement": {"currencies": ["UGX"], "accepts": [{"ocid": 100, "name": "Barclays"}, 101]},
            "previousKey": "aa",
            "keyRotatedAt": 1706500000
        });
        let p = Metadata::parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(p.layout, MetadataLayout::Flat);
        assert!(!p.signed);
        assert!(p.raw_config.is_none());
        assert!(p.signed_config().is_none());
        let m = &p.metadata;
        assert_eq!(m.signature, "");
        assert_eq!(m.profile.as_deref(), Some("Settlement bank"));
        assert_eq!(m.config.public_key, PK);
        assert_eq!(
            m.config.endpoint.as_deref(),
            Some("https://bank.example/opencharge")
        );
        assert_eq!(
            m.config.capabilities,
            vec!["transfer.create", "verify.txid"]
        );
        assert_eq!(
            m.config.settlement.as_ref().unwrap().accepts,
            vec![100, 101]
        );
        assert_eq!(m.config.extra["previousKey"], "aa");
        assert_eq!(m.config.extra["keyRotatedAt"], 1706500000);
        // Emission is config-nested only: no flat keys, no `description`.
        let out = serde_json::to_value(m).unwrap();
        let obj = out.as_object().unwrap();
        assert!(obj.contains_key("config"));
        assert!(obj.contains_key("profile"));
        for k in [
            "publicKey",
            "endpoint",
            "capabilities",
            "settlement",
            "description",
        ] {
            assert!(!obj.contains_key(k), "{k} must not be emitted at top level");
        }
    }

    #[test]
    fn parses_end_user_layout() {
        let doc = json!({
            "opencharge": "0.1",
            "name": "Zomboko",
            "profile": "Just a person",
            "config": {"publicKey": PK},
            "kyc": [400, 675],
            "signature": "sig",
            "contact": "x.com/zomboko"
        });
        let p = Metadata::parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(p.layout, MetadataLayout::EndUser);
        assert!(p.signed);
        assert_eq!(p.metadata.config.endpoint, None);
        assert!(p.metadata.config.capabilities.is_empty());
        assert_eq!(p.metadata.config.settlement, None);
        assert_eq!(p.metadata.kyc, Some(vec![400, 675]));
        // Round trip of an end-user config emits only publicKey.
        assert_eq!(
            serde_json::to_value(&p.metadata.config).unwrap(),
            json!({"publicKey": PK})
        );
    }

    #[test]
    fn description_is_profile_only_when_profile_is_absent() {
        let doc = json!({
            "opencharge": "0.1", "name": "M", "signature": "s",
            "profile": "new", "description": "old",
            "config": {"publicKey": PK, "endpoint": "https://m.example"}
        });
        let p = Metadata::parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(p.metadata.profile.as_deref(), Some("new"));
        let doc = json!({
            "opencharge": "0.1", "name": "M", "signature": "s", "description": "old",
            "config": {"publicKey": PK, "endpoint": "https://m.example"}
        });
        let m: Metadata = serde_json::from_value(doc).unwrap();
        assert_eq!(m.profile.as_deref(), Some("old"));
        let out = serde_json::to_value(&m).unwrap();
        assert_eq!(out["profile"], "old");
        assert!(out.get("description").is_none());
    }

    #[test]
    fn old_accepts_objects_read_as_integers_and_emit_as_integers() {
        let s: Settlement = serde_json::from_str(
            r#"{"currencies":["USD"],"accepts":[{"ocid":100,"name":"Bank A"},{"name":"B","ocid":101},102]}"#,
        )
        .unwrap();
        assert_eq!(s.accepts, vec![100, 101, 102]);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"currencies":["USD"],"accepts":[100,101,102]}"#
        );
        let err = serde_json::from_str::<Settlement>(
            r#"{"currencies":["USD"],"accepts":[{"name":"no ocid"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("missing field `ocid`"), "{err}");
        let err = serde_json::from_str::<Settlement>(r#"{"currencies":["USD"],"accepts":[-5]}"#)
            .unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
        let err = serde_json::from_str::<Settlement>(r#"{"currencies":["USD"],"accepts":["100"]}"#)
            .unwrap_err();
        assert!(err.to_string().contains("OCID"), "{err}");
    }

    #[test]
    fn missing_public_key_is_named() {
        let doc = json!({
            "opencharge": "0.1", "name": "M", "signature": "s",
            "config": {"endpoint": "https://m.example"}
        });
        let err = Metadata::parse(doc.to_string().as_bytes()).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Json(ref m) if m.contains("missing field `publicKey`")),
            "{err}"
        );
        // Flat layout without publicKey and without config.
        let err = Metadata::parse(br#"{"opencharge":"0.1","name":"M"}"#).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Json(ref m) if m.contains("missing field `config`")),
            "{err}"
        );
    }

    #[test]
    fn missing_signature_in_nested_layout_is_an_error() {
        let doc = json!({
            "opencharge": "0.1", "name": "M",
            "config": {"publicKey": PK, "endpoint": "https://m.example"}
        });
        let err = Metadata::parse(doc.to_string().as_bytes()).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Json(ref m) if m.contains("missing field `signature`")),
            "{err}"
        );
    }

    #[test]
    fn oversized_input_is_rejected() {
        let mut doc = nested_doc();
        doc.pop(); // drop the closing brace
        doc.push_str(",\"pad\":\"");
        doc.push_str(&"x".repeat(MAX_METADATA_BYTES));
        doc.push_str("\"}");
        let err = Metadata::parse(doc.as_bytes()).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Json(ref m) if m.contains("limit")),
            "{err}"
        );
        // Exactly at the limit is still parsed (as far as size goes).
        let mut ok = nested_doc();
        ok.push_str(&" ".repeat(MAX_METADATA_BYTES - ok.len()));
        assert_eq!(ok.len(), MAX_METADATA_BYTES);
        assert!(Metadata::parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn non_object_input_is_rejected() {
        for input in [&b"[]"[..], b"\"x\"", b"42", b"null"] {
            let err = Metadata::parse(input).unwrap_err();
            assert!(
                matches!(err, ProtocolError::Json(ref m) if m.contains("JSON object")),
                "{err}"
            );
        }
        assert!(matches!(
            Metadata::parse(b"not json"),
            Err(ProtocolError::Json(_))
        ));
        let err =
            Metadata::parse(br#"{"opencharge":"0.1","name":"M","signature":"s","config":"x"}"#)
                .unwrap_err();
        assert!(matches!(err, ProtocolError::InvalidField { ref field, .. } if field == "config"));
    }
}
