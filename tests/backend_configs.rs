//! The example configurations in `config/` for each CA backend parse, validate, name their
//! secrets by environment variable or file only, and pass `enrollgate check`.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use enrollgate::backends::BackendKind;
use enrollgate::config::Config;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

/// Each backend example with the kind it must define and the route that uses it.
const EXAMPLES: &[(&str, BackendKind, &str)] = &[
    ("cfssl.toml", BackendKind::Cfssl, "cfssl"),
    ("ejbca.toml", BackendKind::Ejbca, "ejbca"),
    ("digicert.toml", BackendKind::Digicert, "digicert"),
    ("upstream-cmp.toml", BackendKind::Cmp, "cmp-ca"),
    ("upstream-est.toml", BackendKind::Est, "central"),
];

#[test]
fn every_backend_example_parses_and_routes_to_its_backend() {
    for (file, kind, label) in EXAMPLES {
        let path = example(file);
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let route = config
            .routes
            .iter()
            .find(|r| r.label == *label)
            .unwrap_or_else(|| panic!("{file}: no route {label:?}"));
        assert!(
            !route.backends.is_empty(),
            "{file}: route {label:?} names no backend"
        );
        for name in &route.backends {
            let def = &config.backends[name];
            assert_eq!(def.kind, *kind, "{file}: backend {name}");
            def.validate(name).unwrap();
        }
    }
}

#[test]
fn examples_hold_no_secret_values() {
    // Secrets are references (`{ env = ... }` or `{ file = ... }`); the parser refuses a
    // secret written inline, so a parsed example cannot hold one.
    let inline = r#"
[backends.d]
kind = "digicert"
url = "https://www.digicert.com/services/v2"
[backends.d.digicert]
api_key = "literal-key"
product = "private_ssl_plus"
organization_id = 1
"#;
    assert!(Config::parse(inline, Path::new("inline.toml")).is_err());
    for (file, _, _) in EXAMPLES {
        let text = std::fs::read_to_string(example(file)).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            let key = line.split('=').next().unwrap_or_default().trim();
            if [
                "api_key",
                "password",
                "secret",
                "auth_key",
                "key",
                "client_key",
            ]
            .contains(&key)
            {
                assert!(
                    line.contains("env =") || line.contains("file ="),
                    "{file}: {line}"
                );
            }
        }
    }
}

#[test]
fn enrollgate_check_accepts_every_backend_example() {
    for (file, _, _) in EXAMPLES {
        let out = Command::new(env!("CARGO_BIN_EXE_enrollgate"))
            .args(["check", "--config"])
            .arg(example(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
