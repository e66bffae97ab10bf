use flotilla_vault::{Error, Keyring, generate_key_spec};
use secrecy::ExposeSecret;

fn config_err(r: flotilla_vault::Result<Option<Keyring>>) -> (String, String) {
    match r {
        Err(Error::Config {
            source_name,
            message,
        }) => (source_name, message),
        other => panic!("expected Config error, got {other:?}"),
    }
}

#[test]
fn env_spec_errors_name_the_variable() {
    let good = generate_key_spec("k1");
    let short = "k1:AAAAAAAAAAAAAAAAAAAAAA=="; // 16 bytes
    let cases = [
        (short.to_owned(), "16 bytes, expected 32"),
        ("k1:not base64!!".to_owned(), "not valid base64"),
        ("justakey".to_owned(), "not of the form id:base64key"),
        (
            format!("{},{}", good.expose_secret(), good.expose_secret()),
            "listed twice",
        ),
        ("bad id!:AAAA".to_owned(), "KEK id must be"),
        (",,".to_owned(), "no keys"),
    ];
    for (spec, want) in cases {
        let (source, message) = config_err(Keyring::from_vars(Some(&spec), None));
        assert_eq!(source, "FLOTILLA_VAULT_KEYS", "{spec}");
        assert!(message.contains(want), "{spec}: {message}");
        let shown = Error::Config {
            source_name: source,
            message,
        }
        .to_string();
        assert!(shown.starts_with("FLOTILLA_VAULT_KEYS: "), "{shown}");
    }
    // A valid key never appears in an error about a later entry.
    let (_, message) = config_err(Keyring::from_vars(
        Some(&format!("{},{short}", good.expose_secret())),
        None,
    ));
    assert!(!message.contains(good.expose_secret().split(':').nth(1).unwrap()));
}

#[test]
fn env_spec_parses_primary_first() {
    let (a, b) = (generate_key_spec("k2"), generate_key_spec("k1"));
    let ring = Keyring::from_vars(
        Some(&format!("{},{}", a.expose_secret(), b.expose_secret())),
        None,
    )
    .unwrap()
    .unwrap();
    assert_eq!(ring.primary_id(), "k2");
    assert_eq!(ring.ids().collect::<Vec<_>>(), ["k2", "k1"]);
    assert!(Keyring::from_vars(None, None).unwrap().is_none());
    assert!(Keyring::from_vars(Some("  "), Some("")).unwrap().is_none());
    let (source, message) = config_err(Keyring::from_vars(Some(a.expose_secret()), Some("/x")));
    assert_eq!(source, "FLOTILLA_VAULT_KEYS");
    assert!(message.contains("FLOTILLA_VAULT_KEY_FILE"), "{message}");
}

#[test]
fn key_file_errors_name_the_variable_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    std::fs::write(&path, "# comment\nk1:AAAA\n").unwrap();
    let (source, message) = config_err(Keyring::from_vars(None, Some(path.to_str().unwrap())));
    assert_eq!(
        source,
        format!("FLOTILLA_VAULT_KEY_FILE ({})", path.display())
    );
    assert!(message.contains("3 bytes, expected 32"), "{message}");
    let missing = dir.path().join("nope");
    let (source, _) = config_err(Keyring::from_vars(None, Some(missing.to_str().unwrap())));
    assert!(source.starts_with("FLOTILLA_VAULT_KEY_FILE"));
    // One per line or comma-separated, comments ignored.
    let (a, b, c) = (
        generate_key_spec("a"),
        generate_key_spec("b"),
        generate_key_spec("c"),
    );
    std::fs::write(
        &path,
        format!(
            "# keys\n{}\n\n{},{}\n",
            a.expose_secret(),
            b.expose_secret(),
            c.expose_secret()
        ),
    )
    .unwrap();
    let ring = Keyring::from_vars(None, Some(path.to_str().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(ring.ids().collect::<Vec<_>>(), ["a", "b", "c"]);
}

#[test]
fn load_or_create_file_creates_0600_once() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/vault.keys");
    let (ring, created) = Keyring::load_or_create_file(&path).unwrap();
    assert!(created);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    let (again, created) = Keyring::load_or_create_file(&path).unwrap();
    assert!(!created);
    assert_eq!(again.primary_id(), ring.primary_id());
    // The created file is itself a valid FLOTILLA_VAULT_KEY_FILE.
    let via_var = Keyring::from_vars(None, Some(path.to_str().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(via_var.primary_id(), ring.primary_id());
    // A corrupt existing file is refused, naming it.
    std::fs::write(&path, "garbage").unwrap();
    match Keyring::load_or_create_file(&path) {
        Err(Error::Config { source_name, .. }) => {
            assert!(source_name.contains("vault.keys"), "{source_name}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn keyring_debug_shows_ids_only() {
    let spec = generate_key_spec("k1");
    let ring = Keyring::parse(spec.expose_secret(), "X").unwrap();
    let debug = format!("{ring:?}");
    assert!(debug.contains("k1"), "{debug}");
    assert!(
        !debug.contains(spec.expose_secret().split(':').nth(1).unwrap()),
        "{debug}"
    );
    assert!(!format!("{spec:?}").contains(spec.expose_secret()));
}
