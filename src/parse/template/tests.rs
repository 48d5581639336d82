#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use super::*;

fn compile(text: &str) -> Result<Template, Vec<TemplateProblem>> {
    Template::from_toml("t", text, Path::new("parsers/t.toml"))
}

#[test]
fn shipped_templates_compile() {
    let (ok, bad) = Templates::shipped();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(ok.len(), SHIPPED.len());
    assert!(ok.iter().all(|t| !t.tests.is_empty()), "every shipped template has a test");
}

#[test]
fn problems_name_the_key_or_the_line() {
    let e = compile("[match]\nfrom = \"*@x.example\"\n[fields]\nemail = { label = \"E\", regex = \"(\" }\n")
        .unwrap_err();
    assert_eq!(e[0].field.as_deref(), Some("fields.email.regex"));
    let e = compile("[match]\nfrom = \"*@x.example\"\n[fields]\nemail = { lable = \"E\" }\n").unwrap_err();
    assert_eq!(e[0].line, Some(4), "{e:?}");
    assert!(e[0].message.contains("lable"), "{e:?}");
    let e = compile("[match]\n").unwrap_err();
    assert_eq!(e[0].field.as_deref(), Some("match"));
    let e = compile("[match]\nsubject = \"x\"\n[[attachments]]\nformat = \"pdf\"\n").unwrap_err();
    assert_eq!(e[0].field.as_deref(), Some("attachments[0].format"));
}

#[test]
fn globs() {
    assert!(glob("*@homepros.example", "Leads@HomePros.example"));
    assert!(glob("lead?@x.example", "leads@x.example"));
    assert!(!glob("*@x.example", "a@y.example"));
    assert!(glob("*", ""));
    assert!(!glob("a*b", "ac"));
}

#[test]
fn fields_by_label_regex_pattern_and_take() {
    let t = compile(
        r#"
[match]
subject = "(?i)lead"
[fields]
name = { label = "Name" }
phones = { label = "Phone", take = "all" }
last_phone = { label = "Phone", take = "last" }
ref = { regex = '#(?P<value>\d+) \((?P<channel>\w+)\)', in = "subject" }
where = { label = "Where", pattern = '^(?P<city>[^/]+)/(?P<state>\w\w)$' }
fixed = { value = "solar" }
"#,
    )
    .unwrap();
    let raw = b"From: a@b.example\r\nSubject: Lead #42 (web)\r\n\r\nName: Al\r\nPhone: 1\r\nPhone: 2\r\nWhere: Austin/TX\r\n";
    let mail = crate::parse::email::mime::read(raw, &Default::default()).unwrap();
    assert!(t.matches(&mail));
    let out = t.extract(&mail, &crate::parse::ParseContext::default()).unwrap();
    let r: Vec<(String, String)> =
        out.records[0].iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect();
    let get = |k: &str| r.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("name"), Some("Al"));
    assert_eq!(get("phones"), Some("1, 2"));
    assert_eq!(get("last_phone"), Some("2"));
    assert_eq!(get("ref"), Some("42"));
    assert_eq!(get("channel"), Some("web"));
    assert_eq!(get("city"), Some("Austin"));
    assert_eq!(get("state"), Some("TX"));
    assert_eq!(get("fixed"), Some("solar"));
}

#[test]
fn operator_templates_win_over_shipped_ones_of_the_same_name() {
    let mine = Template::from_toml(
        "homepros",
        "description = \"mine\"\n[match]\nfrom = \"*@homepros.example\"\n[fields]\nx = { label = \"Name\" }\n",
        Path::new("config/parsers/homepros.toml"),
    )
    .unwrap();
    let set = Templates::new(vec![mine], Templates::shipped().0);
    assert_eq!(set.get("homepros").unwrap().description.as_deref(), Some("mine"));
    assert_eq!(set.iter().filter(|t| t.name == "homepros").count(), 1);
}

#[test]
fn shipped_templates_pass_their_own_tests() {
    // Shipped template paths are relative to the crate root, where cargo runs tests.
    let set = std::sync::Arc::new(Templates::shipped_only());
    let reports = testing::run(&set);
    assert_eq!(reports.len(), SHIPPED.len());
    for r in &reports {
        assert!(r.passed(), "{r}");
    }
}
