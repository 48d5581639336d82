//! File intake: the drop-directory watcher, the import CLI, XLSX cells, and a kill -9 in
//! the middle of a large file.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::files::{FileDirs, builder, count, read_results, wait_for_file};
use crate::support::gateway::{Engine, drop_pg_database, fresh_pg_database};
use crate::support::process::Instance;
use crate::support::{each_engine, sample};

/// Drops `bytes` as `name` the way uploaders do: written under a temporary name, renamed.
fn drop_file(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    let part = dir.join(format!("{name}.part"));
    std::fs::write(&part, bytes).unwrap();
    std::fs::rename(&part, dir.join(name)).unwrap();
}

#[tokio::test]
async fn the_sample_csv_dropped_in_the_drop_directory_gives_the_documented_outcome_per_row() {
    let dirs = FileDirs::new();
    let b = builder(&format!("{}{}", dirs.files_toml(1000, 10_000_000), dirs.drop_dir_toml()));
    each_engine(b, async |gw| {
        let drop = dirs.path("drop/vendor");
        let results = drop.join("results/leads.csv");
        let _ignored = std::fs::remove_file(&results);
        drop_file(&drop, "leads.csv", &sample("csv/leads.csv"));
        wait_for_file(&results).await;

        let rows = read_results(&results);
        assert_eq!(rows.len(), 5, "{rows:#?}");
        let outcomes: Vec<&str> = rows.iter().map(|r| r["outcome"].as_str()).collect();
        assert_eq!(outcomes, ["accepted", "accepted", "rejected", "accepted", "duplicate"]);
        let numbers: Vec<&str> = rows.iter().map(|r| r["row"].as_str()).collect();
        assert_eq!(numbers, ["1", "2", "3", "4", "5"]);

        // Row 2: state name to code, e-mail lower-cased.
        let ben = gw.lead(&rows[1]["lead_id"]).await;
        assert_eq!(ben["fields"]["state"], "CO");
        assert_eq!(ben["fields"]["email"], "ben.achebe@example.com");
        // Row 3: rejected naming e-mail and ZIP, with the vendor's columns.
        let reasons = &rows[2]["reasons"];
        assert!(reasons.contains("email (column C \"E-mail Address\")"), "{reasons}");
        assert!(reasons.contains("postal_code (column E \"Zip Code\")"), "{reasons}");
        let chloe = gw.lead(&rows[2]["lead_id"]).await;
        let fields: Vec<&str> =
            chloe["reasons"].as_array().unwrap().iter().map(|r| r["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["email", "postal_code"]);
        // Row 4: accepted without a phone; its formula is inert in the results file.
        let dev = gw.lead(&rows[3]["lead_id"]).await;
        assert_eq!(dev["status"], "accepted");
        assert!(dev["fields"].get("phone").is_none());
        assert!(rows[3]["Notes"].starts_with("'=HYPERLINK("), "{}", rows[3]["Notes"]);
        let raw = std::fs::read_to_string(&results).unwrap();
        assert!(!raw.contains(",\"=HYPERLINK") && !raw.contains(",=HYPERLINK"), "{raw}");
        // Row 5: a duplicate of row 1 (same e-mail, phone written differently).
        assert_eq!(rows[4]["duplicate_of"], rows[0]["lead_id"]);

        // The file left the drop directory for the archive; its record is closed.
        assert!(!drop.join("leads.csv").exists());
        let archived: Vec<_> = walk(&dirs.path("archive/vendor"));
        assert!(archived.iter().any(|p| p.ends_with("-leads.csv")), "{archived:?}");
        let submissions = gw.get_admin("/v1/admin/submissions?source=vendor").await.json();
        let first = &submissions["submissions"][0];
        assert_eq!(first["channel"], "drop_dir");
    })
    .await;
}

#[tokio::test]
async fn a_file_the_watcher_cannot_read_is_moved_aside_with_a_reason() {
    let dirs = FileDirs::new();
    let b = builder(&format!("{}{}", dirs.files_toml(1000, 10_000_000), dirs.drop_dir_toml()));
    let gw = b.start().await;
    let drop = dirs.path("drop/vendor");
    drop_file(&drop, "leads.pdf", b"%PDF-1.7");
    let results = drop.join("results/leads.pdf.csv");
    wait_for_file(&results).await;
    let rows = read_results(&results);
    assert_eq!(rows[0]["outcome"], "failed");
    assert!(rows[0]["reasons"].contains("format"), "{rows:?}");
    assert!(drop.join("rejected/leads.pdf").exists());
    std::mem::drop(gw);
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

fn leadgate(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_leadgate"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("leadgate runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test]
async fn the_import_cli_imports_a_file_end_to_end_and_a_rerun_doubles_nothing() {
    let dirs = FileDirs::new();
    // Two rows per chunk: the file is three chunks.
    let (tmp, config_dir) = builder(&dirs.files_toml(2, 10_000_000)).materialize();
    let config = config_dir.display().to_string();
    let db = format!("sqlite://{}", tmp.path().join("data/import.db").display());
    let file = dirs.path("in/leads.csv");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, sample("csv/leads.csv")).unwrap();
    let file_arg = file.display().to_string();
    let results = dirs.path("out/results.csv");
    let results_arg = results.display().to_string();

    let (ok, stdout, stderr) = leadgate(&[
        "import",
        "--config",
        &config,
        "--database",
        &db,
        "--source",
        "vendor",
        "--dry-run",
        "--quiet",
        &file_arg,
    ]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("5 rows, 4 valid, 1 invalid (nothing stored)"), "{stdout}");
    assert!(!tmp.path().join("data/import.db").exists(), "a dry run opens no database");

    let import = || {
        leadgate(&[
            "import",
            "--config",
            &config,
            "--database",
            &db,
            "--source",
            "vendor",
            "--quiet",
            "--results",
            &results_arg,
            &file_arg,
        ])
    };
    let (ok, stdout, stderr) = import();
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("5 rows: 3 accepted, 1 duplicate, 1 rejected"), "{stdout}");
    let first = read_results(&results);
    let outcomes: Vec<&str> = first.iter().map(|r| r["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["accepted", "accepted", "rejected", "accepted", "duplicate"]);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM leads").await, 5);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM submissions WHERE channel = 'import'").await, 3);

    // The same file again: the same answers and lead ids, nothing new stored.
    let (ok, stdout, stderr) = import();
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("5 rows: 3 accepted, 1 duplicate, 1 rejected"), "{stdout}");
    let again = read_results(&results);
    let ids = |rows: &[std::collections::HashMap<String, String>]| {
        rows.iter().map(|r| r["lead_id"].clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&again), ids(&first));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM leads").await, 5);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM files WHERE status = 'done'").await, 2);
    assert!(file.exists(), "an imported file stays where it is");
}

fn xlsx_fixture(path: &Path) {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    let other = book.add_worksheet();
    other.set_name("Read me").unwrap();
    other.write_string(0, 0, "not the leads").unwrap();
    let sheet = book.add_worksheet();
    sheet.set_name("Leads").unwrap();
    for (col, h) in ["First Name", "Email", "Phone", "Zip", "Signed Up"].iter().enumerate() {
        sheet.write_string(0, col as u16, *h).unwrap();
    }
    let zip5 = Format::new().set_num_format("00000");
    let date = Format::new().set_num_format("yyyy-mm-dd");
    // Row 1: the ZIP typed as text, the phone as a number.
    sheet.write_string(1, 0, "Ann").unwrap();
    sheet.write_string(1, 1, "ann@example.com").unwrap();
    sheet.write_number(1, 2, 6175550123.0).unwrap();
    sheet.write_string(1, 3, "02134").unwrap();
    sheet.write_datetime_with_format(1, 4, ExcelDateTime::from_ymd(2026, 3, 4).unwrap(), &date).unwrap();
    // Row 2: the ZIP as a number shown with leading zeros (Excel stores 2134).
    sheet.write_string(2, 0, "Bo").unwrap();
    sheet.write_string(2, 1, "bo@example.com").unwrap();
    sheet.write_string(2, 2, "(617) 555-0124").unwrap();
    sheet.write_number_with_format(2, 3, 2134.0, &zip5).unwrap();
    book.save(path).unwrap();
}

#[tokio::test]
async fn an_xlsx_keeps_leading_zero_zips_phone_numbers_and_dates() {
    let dirs = FileDirs::new();
    let source = format!("{}[files]\nsheet = \"Leads\"\n", crate::support::files::vendor_source());
    let (_tmp, config_dir) =
        builder(&dirs.files_toml(1000, 10_000_000)).source("vendor", &source).materialize();
    let file = dirs.path("leads.xlsx");
    xlsx_fixture(&file);
    let (ok, stdout, stderr) = leadgate(&[
        "parse",
        "--config",
        &config_dir.display().to_string(),
        "--source",
        "vendor",
        "--format",
        "xlsx",
        &file.display().to_string(),
    ]);
    assert!(ok, "{stdout}{stderr}");
    let leads: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(leads.len(), 2, "{stdout}");
    assert_eq!(leads[0]["fields"]["postal_code"], "02134");
    assert_eq!(leads[1]["fields"]["postal_code"], "02134");
    assert_eq!(leads[0]["fields"]["phone"], "+16175550123");
    assert_eq!(leads[1]["fields"]["phone"], "+16175550124");
    assert_eq!(leads[0]["fields"]["custom"]["Signed Up"], "2026-03-04");
    assert!(leads.iter().all(|l| l["reasons"].as_array().unwrap().is_empty()), "{stdout}");
}

/// A CSV of `n` distinct leads.
fn big_csv(n: usize) -> Vec<u8> {
    let mut out = String::with_capacity(n * 80);
    out.push_str("First Name,Last Name,Email,Phone,Zip\r\n");
    for i in 0..n {
        out.push_str(&format!("Row{i},Test,row{i}@example.com,,{:05}\r\n", 10000 + i % 80000));
    }
    out.into_bytes()
}

#[tokio::test]
async fn a_kill_in_the_middle_of_a_large_file_resumes_without_loss_or_doubles() {
    const ROWS: usize = 30_000;
    for engine in Engine::all() {
        let dirs = FileDirs::new();
        let b = builder(&format!("{}{}", dirs.files_toml(250, 1 << 30), dirs.drop_dir_toml()));
        let (tmp, config_dir) = b.materialize();
        let db = match &engine {
            Engine::Sqlite => format!("sqlite://{}", tmp.path().join("data/kill.db").display()),
            Engine::Postgres(server) => fresh_pg_database(server).await,
        };
        eprintln!("engine: {engine:?}");
        let first = Instance::start(&config_dir, &db);
        drop_file(&dirs.path("drop/vendor"), "big.csv", &big_csv(ROWS));

        let deadline = Instant::now() + Duration::from_secs(120);
        let at_kill = loop {
            let n = count(&db, "SELECT COUNT(*) FROM leads").await;
            if n > 0 {
                break n;
            }
            assert!(Instant::now() < deadline, "no lead was ever committed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        first.kill();
        let at_kill = at_kill.max(count(&db, "SELECT COUNT(*) FROM leads").await);
        assert!((at_kill as usize) < ROWS, "the file was finished before the kill ({at_kill} rows)");
        assert_eq!(count(&db, "SELECT COUNT(*) FROM files WHERE status = 'processing'").await, 1);

        let second = Instance::start(&config_dir, &db);
        let deadline = Instant::now() + Duration::from_secs(300);
        while count(&db, "SELECT COUNT(*) FROM files WHERE status = 'done'").await == 0 {
            assert!(Instant::now() < deadline, "the file was never finished after the restart");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(second.stop(), "clean stop");

        assert_eq!(count(&db, "SELECT COUNT(*) FROM leads").await, ROWS as i64, "no row lost or doubled");
        assert_eq!(count(&db, "SELECT COUNT(*) FROM leads WHERE status = 'accepted'").await, ROWS as i64);
        let rows = read_results(&dirs.path("drop/vendor/results/big.csv"));
        assert_eq!(rows.len(), ROWS);
        let mut ids: Vec<&str> = rows.iter().map(|r| r["lead_id"].as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ROWS, "one lead per row");
        assert!(rows.iter().enumerate().all(|(i, r)| r["row"] == (i + 1).to_string()));
        eprintln!("killed with {at_kill} of {ROWS} rows committed; resumed to {ROWS}");
        if let Engine::Postgres(server) = &engine {
            drop_pg_database(server, &db).await;
        }
    }
}

#[tokio::test]
async fn xml_batches_and_json_lines_are_read_row_by_row_and_a_bad_line_does_not_stop_the_file() {
    let dirs = FileDirs::new();
    let source = format!("{}[xml]\nrecord = \"lead\"\n", crate::support::files::vendor_source());
    let (_tmp, config_dir) =
        builder(&dirs.files_toml(1000, 10_000_000)).source("vendor", &source).materialize();
    let config = config_dir.display().to_string();

    let xml = dirs.path("batch.xml");
    std::fs::write(
        &xml,
        "<?xml version=\"1.0\"?>\r\n<leads><lead><email>a@example.com</email><zip>02134</zip></lead>\r\n\
         <lead><email>b@example</email></lead><lead><phone>(415) 555-0142</phone></lead></leads>",
    )
    .unwrap();
    let results = dirs.path("xml-results.csv");
    let (ok, stdout, stderr) = leadgate(&[
        "import",
        "--config",
        &config,
        "--source",
        "vendor",
        "--dry-run",
        "--quiet",
        "--results",
        &results.display().to_string(),
        &xml.display().to_string(),
    ]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("3 rows, 2 valid, 1 invalid"), "{stdout}");
    let rows = read_results(&results);
    assert_eq!(rows[1]["outcome"], "rejected");
    assert!(rows[1]["reasons"].starts_with("email: "), "{rows:?}");

    let jsonl = dirs.path("leads.jsonl");
    std::fs::write(
        &jsonl,
        "{\"email\":\"c@example.com\"}\n{\"email\": oops}\r\n\n{\"phone\":\"(415) 555-0143\",\"utm\":{\"source\":\"x\"}}",
    )
    .unwrap();
    let results = dirs.path("jsonl-results.csv");
    let (ok, stdout, stderr) = leadgate(&[
        "import",
        "--config",
        &config,
        "--source",
        "vendor",
        "--dry-run",
        "--quiet",
        "--results",
        &results.display().to_string(),
        &jsonl.display().to_string(),
    ]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("3 rows, 2 valid, 1 invalid"), "{stdout}");
    let rows = read_results(&results);
    let outcomes: Vec<&str> = rows.iter().map(|r| r["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["accepted", "rejected", "accepted"]);
    assert!(rows[1]["reasons"].starts_with("row: line 2: invalid JSON"), "{rows:?}");
}

#[tokio::test]
async fn a_headerless_semicolon_file_is_read_through_the_sources_column_mapping() {
    let dirs = FileDirs::new();
    let source = format!(
        "{}[files]\nheader = false\ndelimiter = \";\"\nencoding = \"windows-1252\"\ncolumns = {{ A = \"email\", B = \"full_name\", C = \"custom.campaign\" }}\n",
        crate::support::files::vendor_source()
    );
    let (_tmp, config_dir) =
        builder(&dirs.files_toml(1000, 10_000_000)).source("vendor", &source).materialize();
    let file = dirs.path("list.txt");
    std::fs::write(&file, b"zoe@example.com;Zo\xEB Lef\xE8vre;spring\r\nbad@;X Y;fall").unwrap();
    let (ok, stdout, stderr) = leadgate(&[
        "parse",
        "--config",
        &config_dir.display().to_string(),
        "--source",
        "vendor",
        "--format",
        "csv",
        &file.display().to_string(),
    ]);
    assert!(ok, "{stdout}{stderr}");
    let leads: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(leads.len(), 2, "{stdout}");
    assert_eq!(leads[0]["fields"]["email"], "zoe@example.com");
    assert_eq!(leads[0]["fields"]["first_name"], "Zoë");
    assert_eq!(leads[0]["fields"]["last_name"], "Lefèvre");
    assert_eq!(leads[0]["fields"]["custom"]["campaign"], "spring");
    assert_eq!(leads[1]["reasons"][0]["field"], "email");
}

#[tokio::test]
async fn results_rows_keep_the_files_row_numbers_across_blank_rows_and_empty_lines() {
    let dirs = FileDirs::new();
    let (tmp, config_dir) = builder(&dirs.files_toml(2, 10_000_000)).materialize();
    let config = config_dir.display().to_string();
    let db = format!("sqlite://{}", tmp.path().join("data/blank.db").display());
    let file = dirs.path("in/blank.csv");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    // Row 2 has only empty cells, row 3 is an empty line, row 5 has a line break in a cell.
    let text = "Email,Notes\r\na@example.com,x\r\n,\r\n\r\nb@example.com,y\r\nc@example.com,\"two\r\nlines\"\r\n\r\nd@example.com,z\r\n";
    std::fs::write(&file, text).unwrap();
    let results = dirs.path("out/blank.csv");
    let (ok, stdout, stderr) = leadgate(&[
        "import",
        "--config",
        &config,
        "--database",
        &db,
        "--source",
        "vendor",
        "--quiet",
        "--results",
        &results.display().to_string(),
        &file.display().to_string(),
    ]);
    assert!(ok, "{stdout}{stderr}");
    let rows = read_results(&results);
    let numbers: Vec<(&str, &str)> = rows.iter().map(|r| (r["row"].as_str(), r["Email"].as_str())).collect();
    assert_eq!(
        numbers,
        [("1", "a@example.com"), ("4", "b@example.com"), ("5", "c@example.com"), ("7", "d@example.com")],
        "a vendor reconciling against its file finds each row where it is"
    );
}
