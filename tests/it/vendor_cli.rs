//! `leadgate parse --format <vendor format> FILE`: the vendor parsers without a gateway.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sources")).unwrap();
    std::fs::write(dir.path().join("leadgate.toml"), "").unwrap();
    std::fs::write(
        dir.path().join("sources/acme.toml"),
        "[validate]\nrequired = [\"email or phone\"]\n\
         [web_to_lead]\nfields = { \"00N5f00000Fbudg\" = \"custom.budget\" }\n\
         [hubspot]\n",
    )
    .unwrap();
    dir
}

fn file(rel: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match rel.strip_prefix("samples/") {
        Some(sample) => root.join("tests/fixtures/samples").join(sample),
        None => root.join("tests/fixtures").join(rel),
    }
}

/// Runs `leadgate parse` and returns (success, stdout lines as JSON, stderr).
fn parse(format: &str, rel: &str) -> (bool, Vec<Value>, String) {
    let dir = tree();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leadgate"));
    cmd.args(["parse", "--config"]).arg(dir.path()).args(["--source", "acme"]);
    if !format.is_empty() {
        cmd.args(["--format", format]);
    }
    let out = cmd.arg(file(rel)).output().unwrap();
    let lines =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (out.status.success(), lines, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn every_vendor_format_can_be_parsed_from_a_file() {
    let (ok, leads, err) = parse("google-ads", "samples/google_ads/lead_form_webhook.json");
    assert!(ok, "{err}");
    assert_eq!(leads[0]["fields"]["last_name"], "Okafor");
    assert!(!leads[0].to_string().contains("example-shared-secret"), "the key is not part of the lead");

    let (ok, leads, err) = parse("meta-lead", "samples/meta/lead.json");
    assert!(ok, "{err}");
    assert_eq!(leads[0]["fields"]["consent"]["given"], true);

    let (ok, leads, err) = parse("hubspot", "hubspot/submission-with-consent.json");
    assert!(ok, "{err}");
    assert_eq!(leads[0]["fields"]["email"], "grace.kim@example.com");

    let (ok, leads, err) = parse("web-to-lead", "web_to_lead/salesforce-generated-form.txt");
    assert!(ok, "{err}");
    assert_eq!(leads[0]["fields"]["custom"]["budget"], "15000");

    let (ok, leads, err) = parse("leadconduit", "leadconduit/xml-post.xml");
    assert!(ok, "{err}");
    assert_eq!(leads[0]["fields"]["vendor_lead_id"], "LC-REF-0003");

    let (ok, leads, err) = parse("google-ads", "google_ads/test-lead.json");
    assert!(ok, "{err}");
    assert_eq!(leads[0]["fields"]["test"], true);
}

#[test]
fn a_broken_vendor_file_fails_with_its_position_or_field() {
    let (ok, _, err) = parse("google-ads", "google_ads/truncated-body.json");
    assert!(!ok);
    assert!(err.contains("at line 6"), "{err}");
    let (ok, _, err) = parse("meta-lead", "samples/meta/leadgen_notification.json");
    assert!(!ok, "a notification is not a lead");
    assert!(err.contains("id: missing"), "{err}");
    let (ok, _, err) = parse("hubspot", "hubspot/fields-not-an-array.json");
    assert!(!ok);
    assert!(err.contains("fields: is an object"), "{err}");
}

#[test]
fn check_names_the_vendor_settings_that_are_wrong() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sources")).unwrap();
    std::fs::write(dir.path().join("leadgate.toml"), "").unwrap();
    std::fs::write(
        dir.path().join("sources/a.toml"),
        "[google_ads]\nkey = \"typed-in-clear\"\n\
         [meta]\napp_secret = \"in-the-file\"\nverify_token = \"${LG_CHECK_VERIFY:-long-enough-token}\"\n\
         [web_to_lead.fields]\n\"zip\" = \"postal_code\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("sources/b.toml"), "[leadconduit]\nanswer = \"xml\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_leadgate"))
        .args(["check", "--config"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    let has = |needle: &str| stdout.lines().any(|l| l.contains(needle));
    assert!(has("sources/a.toml: google_ads.key: API keys must be written as `sha256:<hex>`"), "{stdout}");
    assert!(has("sources/a.toml: meta.app_secret: must be an ${ENV} reference"), "{stdout}");
    assert!(has("sources/a.toml: meta: needs page_token"), "{stdout}");
    assert!(has("sources/a.toml: web_to_lead.fields.\"zip\": not a Salesforce custom field id"), "{stdout}");
    assert!(has("sources/b.toml:2:10: unknown variant `xml`"), "{stdout}");
}

#[test]
fn without_format_parse_goes_by_the_extension_and_the_content() {
    for (rel, field, want) in [
        ("samples/http/json_lead.json", "email", "mj.oneil@example.com"),
        ("samples/csv/leads.csv", "last_name", "Lindqvist"),
        ("samples/http/xml_lead.xml", "email", "priya.raman@example.net"),
        ("samples/adf/adf_lead.xml", "email", "dana.whitfield@example.com"),
        ("samples/email/labelled_text.eml", "email", "jose.ibanez@example.com"),
        // A form post saved as text: the content says it is form pairs, not CSV.
        ("samples/http/form_lead.txt", "email", "lee.tanaka@example.org"),
    ] {
        let (ok, leads, err) = parse("", rel);
        assert!(ok, "{rel}: {err}");
        assert_eq!(leads[0]["fields"][field], want, "{rel}: {leads:?}");
    }
    // Standard input has no name: the content decides, and says so when it cannot.
    let dir = tree();
    let run = |input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_leadgate"))
            .args(["parse", "--config"])
            .arg(dir.path())
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(r#"{"email": "in@example.com"}"#);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("in@example.com"));
    let out = run("Name,Email\nAda,ada@example.com\n");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot tell the format of -: give --format"),
        "{out:?}"
    );
}
