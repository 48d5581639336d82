//! E-mail intake against a real IMAP server (Dovecot, `scripts/dovecot`): mail APPENDed
//! to a mailbox becomes a committed lead, exactly once, and is filed only after that.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::gateway::{Gateway, SOURCE_KEY};
use crate::support::imap::{TestImap, each_engine_with_mailbox};
use crate::support::{GatewayBuilder, sample};

/// A gateway whose `test` source reads `user`'s INBOX; `email` is the source's `[email]`
/// table body, `mailbox` extra lines of its `[[mailboxes]]` entry.
fn builder(imap: &TestImap, user: &str, email: &str, mailbox: &str) -> GatewayBuilder {
    GatewayBuilder::new().source(
        "test",
        &format!(
            "keys = [\"${{LG_TEST_UNSET_SOURCE:-{SOURCE_KEY}}}\"]\n[validate]\nrequired = [\"email or phone\"]\n\
             [email]\n{email}\n{}",
            imap.mailbox_toml(user, mailbox)
        ),
    )
}

async fn submissions(gw: &Gateway) -> Vec<Value> {
    let a = gw.get_admin("/v1/admin/submissions?source=test&limit=100").await;
    assert_eq!(a.status, 200, "{}", a.text);
    let mut list = a.json()["submissions"].as_array().cloned().unwrap_or_default();
    list.reverse();
    list
}

/// Waits (deadline 20 s) until the source has `n` submissions; oldest first.
async fn wait_submissions(gw: &Gateway, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = submissions(gw).await;
        if list.len() >= n {
            assert_eq!(list.len(), n, "more submissions than expected: {list:#?}");
            return list;
        }
        assert!(Instant::now() < deadline, "{} submissions, expected {n}", list.len());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn submission(gw: &Gateway, id: &str) -> Value {
    let a = gw.get_admin(&format!("/v1/admin/submissions/{id}")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json()
}

/// The fields of the one lead a submission made.
async fn lead_of(gw: &Gateway, submission_id: &str) -> Value {
    let s = submission(gw, submission_id).await;
    let ids = s["lead_ids"].as_array().cloned().unwrap_or_default();
    assert_eq!(ids.len(), 1, "{s:#}");
    gw.lead(ids[0].as_str().unwrap()).await
}

async fn mailbox_state(gw: &Gateway) -> Value {
    let a = gw.get_admin("/v1/admin/mailboxes").await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json()["mailboxes"][0].clone()
}

async fn wait_state(gw: &Gateway, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = mailbox_state(gw).await;
        if m["state"] == state {
            return m;
        }
        assert!(Instant::now() < deadline, "mailbox never reached {state}: {m:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/email").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn with_message_id(raw: &[u8], id: &str) -> Vec<u8> {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let start = text.find("Message-ID: <").unwrap() + "Message-ID: <".len();
    let end = start + text[start..].find('>').unwrap();
    format!("{}{id}{}", &text[..start], &text[end..]).into_bytes()
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_IMAP (scripts/test-services starts Dovecot)"]
async fn mail_appended_to_the_inbox_becomes_a_lead_through_idle() {
    let imap = TestImap::from_env();
    // Polling once an hour: only IDLE can bring the lead in during the test.
    let b = |user: &str| builder(&imap, user, "", "poll_interval = \"1h\"");
    each_engine_with_mailbox(&imap, b, async |gw, user| {
        wait_state(gw, "idle").await;
        let ready = gw.http.get(gw.url("/readyz")).send().await.unwrap().json::<Value>().await.unwrap();
        assert_eq!(ready["mailboxes"][0]["state"], "idle", "{ready:#}");

        let appended = Instant::now();
        imap.append(user, "INBOX", &sample("email/labelled_text.eml")).await;
        let list = wait_submissions(gw, 1).await;
        eprintln!("APPEND to committed submission: {:?}", appended.elapsed());
        let s = &list[0];
        assert_eq!(s["channel"], "imap");
        assert_eq!(s["format"], "email");
        assert_eq!(s["status"], "processed");
        assert_eq!(s["meta"]["message_id"], "hp-55120@homepros.example");
        let lead = lead_of(gw, s["id"].as_str().unwrap()).await;
        assert_eq!(lead["status"], "accepted");
        assert_eq!(lead["fields"]["email"], "jose.ibanez@example.com");

        // Filed only after the commit: in the processed folder, the INBOX empty.
        imap.wait_count(user, "processed", 1).await;
        assert!(imap.messages(user, "INBOX").await.is_empty());
        let m = mailbox_state(gw).await;
        assert!(m["last_fetch_at"].is_string(), "{m:#}");
        assert!(m["last_error"].is_null(), "{m:#}");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_IMAP (scripts/test-services starts Dovecot)"]
async fn without_idle_the_mailbox_is_polled() {
    let imap = TestImap::from_env();
    let b = |user: &str| builder(&imap, user, "", "idle = false\npoll_interval = \"100ms\"");
    each_engine_with_mailbox(&imap, b, async |gw, user| {
        wait_state(gw, "polling").await;
        imap.append(user, "INBOX", &sample("email/html_table_only.eml")).await;
        let list = wait_submissions(gw, 1).await;
        let lead = lead_of(gw, list[0]["id"].as_str().unwrap()).await;
        assert_eq!(lead["fields"]["email"], "grace.kim@example.com");
        imap.wait_count(user, "processed", 1).await;
    })
    .await;
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_IMAP (scripts/test-services starts Dovecot)"]
async fn a_restart_resumes_without_duplicates_or_gaps() {
    let imap = TestImap::from_env();
    let b = |user: &str| builder(&imap, user, "", "poll_interval = \"200ms\"");
    each_engine_with_mailbox(&imap, b, async |gw, user| {
        let first = sample("email/labelled_text.eml");
        imap.append(user, "INBOX", &first).await;
        imap.append(user, "INBOX", &sample("email/html_table_only.eml")).await;
        wait_submissions(gw, 2).await;
        imap.wait_count(user, "processed", 2).await;

        gw.stop().await;
        // While it is down: two new leads, and a second copy of the first message.
        imap.append(user, "INBOX", &sample("email/adf_attachment.eml")).await;
        let other = with_message_id(&first, "hp-55121@homepros.example");
        let other = String::from_utf8(other)
            .unwrap()
            .replace("HP-55120", "HP-55121")
            .replace("jose.ibanez@example.com", "jose.ibanez2@example.com");
        let other = other.replace("214-555-0147", "214-555-0148").replace("(214) 555-0190", "(214) 555-0191");
        imap.append(user, "INBOX", other.as_bytes()).await;
        imap.append(user, "INBOX", &first).await;
        gw.restart().await;

        imap.wait_count(user, "processed", 5).await;
        imap.wait_count(user, "INBOX", 0).await;
        let list = wait_submissions(gw, 4).await;
        let ids: Vec<&str> = list.iter().map(|s| s["meta"]["message_id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "hp-55120@homepros.example",
                "rf-7731@rentfinder.example",
                "adf-ea-2026-114@autosite.example",
                "hp-55121@homepros.example"
            ]
        );
        for s in &list {
            assert_eq!(lead_of(gw, s["id"].as_str().unwrap()).await["status"], "accepted", "{s:#}");
        }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_IMAP (scripts/test-services starts Dovecot)"]
async fn a_crash_between_commit_and_move_does_not_make_a_second_lead() {
    let imap = TestImap::from_env();
    let b = |user: &str| builder(&imap, user, "", "poll_interval = \"200ms\"");
    each_engine_with_mailbox(&imap, b, async |gw, user| {
        let raw = sample("email/labelled_text.eml");
        imap.append(user, "INBOX", &raw).await;
        let first = wait_submissions(gw, 1).await;
        imap.wait_count(user, "processed", 1).await;
        gw.stop().await;

        // The state a crash right after the commit leaves: the submission is stored, the
        // message is still in the INBOX and its row does not say it was committed.
        imap.append(user, "INBOX", &raw).await;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&gw.database_url).await.unwrap();
        let n = sqlx::query("UPDATE email_messages SET status = 'pending', outcome = NULL")
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(n, 1);
        pool.close().await;

        gw.restart().await;
        imap.wait_count(user, "INBOX", 0).await;
        imap.wait_count(user, "processed", 2).await;
        let after = wait_submissions(gw, 1).await;
        assert_eq!(after[0]["id"], first[0]["id"]);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_IMAP (scripts/test-services starts Dovecot)"]
async fn malformed_oversize_and_template_less_mail_goes_to_the_failed_folder_with_the_raw_kept() {
    let imap = TestImap::from_env();
    let b = |user: &str| builder(&imap, user, "max_message_bytes = 2048", "poll_interval = \"200ms\"");
    each_engine_with_mailbox(&imap, b, async |gw, user| {
        let malformed = fixture("no-header-line.eml");
        let mut oversize =
            b"From: big@vendor.example\r\nSubject: huge\r\nMessage-ID: <big-1@vendor.example>\r\n\r\n"
                .to_vec();
        oversize.extend(std::iter::repeat_n(b'x', 4000));
        oversize.extend(b"\r\n");
        let no_fields = fixture("no-lead-fields.eml");
        imap.append(user, "INBOX", &malformed).await;
        imap.append(user, "INBOX", &oversize).await;
        imap.append(user, "INBOX", &no_fields).await;

        let failed = imap.wait_count(user, "failed", 3).await;
        assert_eq!(failed[0], malformed);
        assert_eq!(failed[1], oversize, "the oversize message is in the failed folder, whole");
        assert!(imap.messages(user, "processed").await.is_empty());

        let list = wait_submissions(gw, 3).await;
        let s0 = submission(gw, list[0]["id"].as_str().unwrap()).await;
        assert_eq!(s0["status"], "failed");
        assert!(s0["error"].as_str().unwrap().contains("not an e-mail message"), "{s0:#}");
        assert_eq!(s0["body"].as_str().unwrap().as_bytes(), malformed.as_slice(), "the raw is kept");

        let s1 = submission(gw, list[1]["id"].as_str().unwrap()).await;
        assert_eq!(s1["status"], "failed");
        assert!(s1["error"].as_str().unwrap().contains("over the limit of 2048 bytes"), "{s1:#}");
        assert!(s1["body"].as_str().unwrap().starts_with("From: big@vendor.example"), "{s1:#}");
        assert!(s1["body_bytes"].as_u64().unwrap() < 2048, "only the headers were fetched");

        let s2 = submission(gw, list[2]["id"].as_str().unwrap()).await;
        assert_eq!(s2["status"], "needs_template", "{s2:#}");
        assert!(s2["error"].as_str().unwrap().starts_with("needs a template"), "{s2:#}");
        let listed = gw.get_admin("/v1/admin/submissions?status=needs_template").await.json();
        assert_eq!(listed["submissions"].as_array().unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_IMAP (scripts/test-services starts Dovecot)"]
async fn each_sample_extracts_the_fields_the_samples_readme_lists() {
    let imap = TestImap::from_env();
    let b = |user: &str| builder(&imap, user, "", "poll_interval = \"200ms\"");
    each_engine_with_mailbox(&imap, b, async |gw, user| {
        for name in ["labelled_text.eml", "html_table_only.eml", "adf_attachment.eml"] {
            imap.append(user, "INBOX", &sample(&format!("email/{name}"))).await;
        }
        let list = wait_submissions(gw, 3).await;

        let f = lead_of(gw, list[0]["id"].as_str().unwrap()).await["fields"].clone();
        assert_eq!(f["first_name"], "José");
        assert_eq!(f["last_name"], "Ángel Ibáñez");
        assert_eq!(f["email"], "jose.ibanez@example.com");
        assert_eq!(f["phone"], "+12145550147");
        assert_eq!(f["phone_2"], "+12145550190");
        assert_eq!(f["street"], "4410 Ross Ave");
        assert_eq!(f["city"], "Dallas");
        assert_eq!(f["state"], "TX");
        assert_eq!(f["postal_code"], "75204");
        assert_eq!(f["product"], "Kitchen remodel");
        assert_eq!(f["vendor_lead_id"], "HP-55120");
        assert_eq!(
            f["comments"],
            "Quiero presupuesto para encimeras de cuarzo y gabinetes nuevos. La cocina mide aprox. 4 x 5 m."
        );
        assert!(!f.to_string().contains("800"), "the footer's support number is not the lead's: {f:#}");

        let f = lead_of(gw, list[1]["id"].as_str().unwrap()).await["fields"].clone();
        assert_eq!(f["first_name"], "Grace");
        assert_eq!(f["last_name"], "Kim");
        assert_eq!(f["email"], "grace.kim@example.com");
        assert_eq!(f["phone"], "+17185550126");
        assert_eq!(f["custom"]["property"], "88 Pine St #3B, Brooklyn, NY 11201");
        assert_eq!(f["custom"]["move_in"], "Nov 1");
        let text = f.to_string();
        for theirs in ["7185550100", "marco@agency.example", "relay-8f3k2"] {
            assert!(!text.contains(theirs), "{theirs} is not the lead's: {f:#}");
        }

        let lead = lead_of(gw, list[2]["id"].as_str().unwrap()).await;
        let f = lead["fields"].clone();
        assert_eq!(f["first_name"], "Dana");
        assert_eq!(f["last_name"], "Whitfield");
        assert_eq!(f["email"], "dana.whitfield@example.com");
        assert_eq!(f["phone"], "+16145550134");
        assert_eq!(f["phone_2"], "+16145550188");
        assert_eq!(f["street"], "77 Elm Street");
        assert_eq!(f["city"], "Columbus");
        assert_eq!(f["state"], "OH");
        assert_eq!(f["postal_code"], "43215");
        assert_eq!(f["country"], "US");
        assert_eq!(f["product"], "2026 Subaru Outback Premium");
        assert_eq!(f["custom"]["vin"], "4S4BTAFC0R3100001");
        assert_eq!(f["custom"]["trade_in"], "2017 Honda Civic");
        assert_eq!(f["custom"]["timeframe"], "Within 2 weeks");
        assert_eq!(f["custom"]["requestdate"], "2026-10-05T14:22:09-05:00");
        assert_eq!(f["vendor_lead_id"], "EA-2026-114");
        assert_eq!(f["custom"]["adf_id_source"], "ExampleAutoSite");
        assert!(f["comments"].as_str().unwrap().contains("hail damage"));
        let text = f.to_string();
        for theirs in ["internet-sales@dealer.example", "6145550100", "leads@autosite.example"] {
            assert!(!text.contains(theirs), "{theirs} is not the lead's: {f:#}");
        }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_IMAP (scripts/test-services starts Dovecot)"]
async fn mail_without_the_vendors_dkim_signature_is_quarantined_never_routed() {
    use base64::Engine as _;
    use mail_auth::common::crypto::Ed25519Key;
    use mail_auth::common::headers::HeaderWriter;
    use mail_auth::dkim::DkimSigner;

    let imap = TestImap::from_env();
    let key = |seed: &[u8]| Ed25519Key::from_pkcs8_der(seed).unwrap();
    let vendor_pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
    let forger_pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
    let public = base64::engine::general_purpose::STANDARD.encode(key(&vendor_pkcs8).public_key());
    let sign = |pkcs8: &[u8], raw: &[u8]| {
        let sig = DkimSigner::from_key(key(pkcs8))
            .domain("homepros.example")
            .selector("s1")
            .headers(["From", "To", "Subject", "Date", "Message-ID"])
            .sign(raw)
            .unwrap();
        [sig.to_header().as_bytes(), raw].concat()
    };
    let email = format!(
        "[email.dkim]\ndomains = [\"homepros.example\"]\nkeys = {{ \"s1._domainkey.homepros.example\" = \"v=DKIM1; k=ed25519; p={public}\" }}\n"
    );
    let b = |user: &str| builder(&imap, user, &email, "poll_interval = \"200ms\"");
    each_engine_with_mailbox(&imap, b, async |gw, user| {
        let genuine = sign(&vendor_pkcs8, &sample("email/labelled_text.eml"));
        let unsigned = with_message_id(&sample("email/labelled_text.eml"), "spoof-1@homepros.example");
        let forged = sign(
            &forger_pkcs8,
            &with_message_id(&sample("email/labelled_text.eml"), "spoof-2@homepros.example"),
        );
        imap.append(user, "INBOX", &unsigned).await;
        imap.append(user, "INBOX", &forged).await;
        imap.append(user, "INBOX", &genuine).await;

        let list = wait_submissions(gw, 3).await;
        imap.wait_count(user, "failed", 2).await;
        imap.wait_count(user, "processed", 1).await;
        for s in &list[..2] {
            let s = submission(gw, s["id"].as_str().unwrap()).await;
            assert_eq!(s["status"], "quarantined", "{s:#}");
            assert!(s["error"].as_str().unwrap().starts_with("quarantined:"), "{s:#}");
            assert_eq!(s["lead_ids"], serde_json::json!([]), "no lead, so nothing is routed");
        }
        let s = submission(gw, list[2]["id"].as_str().unwrap()).await;
        assert_eq!(s["status"], "processed", "{s:#}");
        assert_eq!(s["meta"]["dkim"], "pass (homepros.example)");
        assert_eq!(lead_of(gw, list[2]["id"].as_str().unwrap()).await["status"], "accepted");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_IMAP (scripts/test-services starts Dovecot)"]
async fn starttls_and_implicit_tls_mailboxes_verify_the_server_and_take_mail() {
    let imap = TestImap::from_env();
    let ca = crate::support::service_env("LEADGATE_TEST_IMAP_CA");
    let tls_port = crate::support::service_env("LEADGATE_TEST_IMAPS_PORT");
    for (tls, port) in [("starttls", imap.port.to_string()), ("implicit", tls_port.clone())] {
        let b = |user: &str| {
            GatewayBuilder::new().source(
                "test",
                &format!(
                    "keys = [\"${{LG_TEST_UNSET_SOURCE:-{SOURCE_KEY}}}\"]\n\
                     [[mailboxes]]\nhost = \"localhost\"\nport = {port}\ntls = \"{tls}\"\nca_file = \"{ca}\"\n\
                     user = \"{user}\"\npassword = \"${{LG_TEST_UNSET_IMAP:-{}}}\"\n\
                     processed_folder = \"processed\"\nfailed_folder = \"failed\"\nmax_backoff = \"500ms\"\n",
                    imap.password
                ),
            )
        };
        each_engine_with_mailbox(&imap, b, async |gw, user| {
            imap.append(user, "INBOX", &sample("email/labelled_text.eml")).await;
            let list = wait_submissions(gw, 1).await;
            assert_eq!(lead_of(gw, list[0]["id"].as_str().unwrap()).await["status"], "accepted", "{tls}");
            imap.wait_count(user, "processed", 1).await;
        })
        .await;
    }
}

#[tokio::test]
#[ignore = "needs LEADGATE_TEST_IMAP (scripts/test-services starts Dovecot)"]
async fn a_new_uidvalidity_rereads_the_folder_without_duplicating() {
    let imap = TestImap::from_env();
    let b = |user: &str| builder(&imap, user, "", "folder = \"leads\"\npoll_interval = \"200ms\"");
    each_engine_with_mailbox(&imap, b, async |gw, user| {
        let first = sample("email/labelled_text.eml");
        imap.append(user, "leads", &first).await;
        wait_submissions(gw, 1).await;
        imap.wait_count(user, "processed", 1).await;
        let before = mailbox_state(gw).await;
        gw.stop().await;

        // The folder is recreated (new UIDVALIDITY, UIDs from 1 again) and holds the
        // first message once more plus a new one.
        imap.recreate(user, "leads").await;
        imap.append(user, "leads", &first).await;
        imap.append(user, "leads", &sample("email/html_table_only.eml")).await;
        gw.restart().await;

        imap.wait_count(user, "leads", 0).await;
        imap.wait_count(user, "processed", 3).await;
        let list = wait_submissions(gw, 2).await;
        assert_eq!(list[1]["meta"]["message_id"], "rf-7731@rentfinder.example");
        let after = mailbox_state(gw).await;
        assert_ne!(after["uidvalidity"], before["uidvalidity"], "{after:#}");
        assert_eq!(after["last_uid"], 2, "{after:#}");
    })
    .await;
}
