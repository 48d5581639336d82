//! The web pages as a browser uses them (cookies, CSRF tokens, redirects), and the
//! OpenAPI document against the routes the gateway really serves.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::support::gateway::{ADMIN_KEY, Gateway, SOURCE_KEY};
use crate::support::{GatewayBuilder, Mode, TestReceiver, each_engine};

fn partner(name: &str, key: &str) -> String {
    format!("delivery = \"pull\"\nkeys = [\"${{LG_UNSET_{}:-{key}}}\"]\n", name.to_uppercase())
}

fn pool(buyers: &[&str]) -> String {
    let list: Vec<String> = buyers.iter().map(|b| format!("\"{b}\"")).collect();
    format!(
        "[[route]]\nname = \"pool\"\nbuyers = [{}]\noffer = \"open\"\n[route.sla]\nclaim_within = \"10m\"\ndisposition_within = \"1d\"\n",
        list.join(", ")
    )
}

fn lead(i: usize) -> Value {
    json!({"first_name": "Priya", "last_name": "Raman", "email": format!("web{i}@example.com"),
           "phone": format!("(206) 555-{:04}", 2000 + i), "street": "1 Pike St", "city": "Seattle",
           "state": "WA", "zip": "98101", "product": "insurance"})
}

/// A browser: keeps cookies, does not follow redirects (tests look at them).
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
    /// Every `Set-Cookie` seen, verbatim.
    set_cookies: Vec<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    csp: Option<String>,
    html: String,
}

impl Page {
    /// The value of the first `name="csrf"` hidden field.
    fn csrf(&self) -> String {
        let at = self
            .html
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field:\n{}", self.html));
        let rest = &self.html[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

impl Browser {
    fn new(gw: &Gateway) -> Self {
        Browser {
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: gw.url(""),
            cookies: HashMap::new(),
            set_cookies: Vec::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let r = req.header("cookie", cookie.join("; ")).send().await.unwrap();
        for v in r.headers().get_all("set-cookie") {
            let text = v.to_str().unwrap().to_string();
            let (pair, _) = text.split_once(';').unwrap_or((&text, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
            self.set_cookies.push(text);
        }
        let header = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
        let (status, location, csp) =
            (r.status().as_u16(), header("location"), header("content-security-policy"));
        // The template engine escapes `/` too (`&#x2f;`), which browsers read as `/`.
        Page { status, location, csp, html: r.text().await.unwrap().replace("&#x2f;", "/") }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    /// Signs in to `area` (`portal` or `console`) with `key`.
    async fn sign_in(&mut self, area: &str, key: &str) -> Page {
        let form = self.get(&format!("/{area}/login")).await;
        assert_eq!(form.status, 200);
        let csrf = form.csrf();
        self.post(&format!("/{area}/login"), &[("csrf", &csrf), ("key", key)]).await
    }
}

fn builder() -> GatewayBuilder {
    GatewayBuilder::new()
        .buyer("alpha", &partner("alpha", "partner-key-alpha"))
        .buyer("beta", &partner("beta", "partner-key-beta"))
        .buyer("gamma", &partner("gamma", "partner-key-gamma"))
        .routes(&pool(&["alpha", "beta"]))
}

#[tokio::test]
async fn a_partner_signs_in_claims_an_offer_sees_the_lead_and_reports_on_it() {
    each_engine(builder(), async |gw| {
        let id = gw.post_json(&lead(1)).await.lead_id();
        let mut b = Browser::new(gw);
        assert_eq!(
            b.get("/portal").await.location.as_deref(),
            Some("/portal/login"),
            "signed out: to sign-in"
        );
        let signed = b.sign_in("portal", "partner-key-alpha").await;
        assert_eq!((signed.status, signed.location.as_deref()), (303, Some("/portal")));
        let cookie = b.set_cookies.iter().find(|c| c.starts_with("lg_session=")).cloned().unwrap();
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Strict")
                && cookie.contains("Path=/portal"),
            "{cookie}"
        );
        assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag");

        // The offer is masked exactly as the partner API masks it.
        let offers = b.get("/portal").await;
        assert_eq!(offers.status, 200);
        assert!(offers.html.contains(&id), "the offer is listed");
        assert!(offers.html.contains("P.R.") && offers.html.contains("Seattle"), "{}", offers.html);
        assert!(
            !offers.html.contains("web1@example.com")
                && !offers.html.contains("Raman")
                && !offers.html.contains("Pike")
        );
        assert!(offers.html.contains("data-deadline"), "timers count down");

        let claimed = b.post(&format!("/portal/offers/{id}/claim"), &[("csrf", &offers.csrf())]).await;
        assert_eq!(claimed.status, 303, "{}", claimed.html);
        let at = claimed.location.unwrap();
        assert_eq!(at, format!("/portal/leads/{id}"));
        let page = b.get(&at).await;
        assert_eq!(page.status, 200);
        assert!(
            page.html.contains("web1@example.com")
                && page.html.contains("Raman")
                && page.html.contains("1 Pike St")
        );
        assert!(page.html.contains("Lease ends") && page.html.contains("Report what happened: due"));

        let kept = b.post(&format!("/portal/leads/{id}/confirm"), &[("csrf", &page.csrf())]).await;
        assert_eq!(kept.status, 303);
        assert_eq!(gw.lead(&id).await["stage"], "confirmed");

        // A return without a reason is refused before anything is recorded.
        let csrf = page.csrf();
        b.post(&format!("/portal/leads/{id}/disposition"), &[("csrf", &csrf), ("status", "returned")]).await;
        assert!(b.get(&at).await.html.contains("A return needs a reason."));
        let done = b
            .post(&format!("/portal/leads/{id}/disposition"), &[("csrf", &csrf), ("status", "contacted")])
            .await;
        assert_eq!(done.status, 303);
        let after = b.get(&at).await;
        assert!(after.html.contains("Recorded: contacted."), "{}", after.html);
        let l = gw.lead(&id).await;
        assert!(l["events"].as_array().unwrap().iter().any(|e| e["kind"] == "disposition"), "{l:#}");

        let mut op = Browser::new(gw);
        op.sign_in("console", ADMIN_KEY).await;
        let dash = op.get("/console?period=hour").await;
        assert!(dash.html.contains("data-total=\"claimed\">1<"), "{}", dash.html);

        let history = b.get("/portal/history").await;
        assert!(
            history.html.contains(&id)
                && history.html.contains("contacted")
                && history.html.contains("confirmed")
        );

        // Sign-out ends the session on the server.
        let csrf = history.csrf();
        assert_eq!(
            b.post("/portal/logout", &[("csrf", &csrf)]).await.location.as_deref(),
            Some("/portal/login")
        );
        let mut replay = Browser::new(gw);
        replay.cookies =
            HashMap::from([("lg_session".to_string(), cookie.split(';').next().unwrap()[11..].to_string())]);
        assert_eq!(replay.get("/portal").await.status, 303, "the old cookie no longer works");
    })
    .await;
}

#[tokio::test]
async fn two_partners_claiming_one_offer_get_one_lead_and_one_someone_else_took_it_page() {
    each_engine(builder(), async |gw| {
        let id = gw.post_json(&lead(2)).await.lead_id();
        let mut a = Browser::new(gw);
        let mut b = Browser::new(gw);
        a.sign_in("portal", "partner-key-alpha").await;
        b.sign_in("portal", "partner-key-beta").await;
        let (ca, cb) = (a.get("/portal").await.csrf(), b.get("/portal").await.csrf());
        let path = format!("/portal/offers/{id}/claim");
        let (fa, fb) = ([("csrf", ca.as_str())], [("csrf", cb.as_str())]);
        let (ra, rb) = tokio::join!(a.post(&path, &fa), b.post(&path, &fb));
        let mut statuses = [ra.status, rb.status];
        statuses.sort();
        assert_eq!(statuses, [303, 409], "one winner, one loser");
        let loser = if ra.status == 409 { &ra } else { &rb };
        assert!(loser.html.contains("Someone else took it"), "{}", loser.html);
        assert!(loser.html.contains("<a class=\"button\" href=\"/portal\">"), "a way back to the offers");
        assert!(!loser.html.contains("web2@example.com"), "the loser sees nothing of the lead");
    })
    .await;
}

#[tokio::test]
async fn a_partner_can_never_see_a_lead_not_offered_to_it() {
    each_engine(builder(), async |gw| {
        let id = gw.post_json(&lead(3)).await.lead_id();
        // gamma is a pull partner, but not on the route.
        let mut g = Browser::new(gw);
        assert_eq!(g.sign_in("portal", "partner-key-gamma").await.status, 303);
        let offers = g.get("/portal").await;
        assert!(!offers.html.contains(&id));
        let csrf = offers.csrf();
        let claim = g.post(&format!("/portal/offers/{id}/claim"), &[("csrf", &csrf)]).await;
        assert_eq!(claim.status, 404, "answered like an unknown lead");
        let open = g.get(&format!("/portal/leads/{id}")).await;
        assert_eq!(open.status, 404);
        assert!(!open.html.contains("web3@example.com"));
        let report = g
            .post(&format!("/portal/leads/{id}/disposition"), &[("csrf", &csrf), ("status", "contacted")])
            .await;
        assert_eq!(report.status, 404);

        // beta was offered the lead, but alpha claimed it: beta cannot open it either.
        let mut a = Browser::new(gw);
        a.sign_in("portal", "partner-key-alpha").await;
        let csrf_a = a.get("/portal").await.csrf();
        assert_eq!(a.post(&format!("/portal/offers/{id}/claim"), &[("csrf", &csrf_a)]).await.status, 303);
        let mut b = Browser::new(gw);
        b.sign_in("portal", "partner-key-beta").await;
        let page = b.get(&format!("/portal/leads/{id}")).await;
        assert_eq!(page.status, 404);
        assert!(!page.html.contains("web3@example.com") && !page.html.contains("Raman"));

        // Neither a source key nor a push buyer's key opens the portal; an admin session
        // is no portal session.
        let mut s = Browser::new(gw);
        assert_eq!(s.sign_in("portal", SOURCE_KEY).await.status, 401);
        let mut admin = Browser::new(gw);
        assert_eq!(admin.sign_in("portal", ADMIN_KEY).await.status, 401);
        assert_eq!(admin.sign_in("console", ADMIN_KEY).await.status, 303);
        assert_eq!(admin.get(&format!("/portal/leads/{id}")).await.status, 303, "to the portal's sign-in");
    })
    .await;
}

#[tokio::test]
async fn forms_without_the_session_csrf_token_are_refused() {
    each_engine(builder(), async |gw| {
        let id = gw.post_json(&lead(4)).await.lead_id();
        let mut b = Browser::new(gw);
        // Sign-in itself needs the form's token.
        let no_token = b.post("/portal/login", &[("key", "partner-key-alpha")]).await;
        assert_eq!(no_token.status, 403);
        b.sign_in("portal", "partner-key-alpha").await;
        let claim = b.post(&format!("/portal/offers/{id}/claim"), &[("csrf", "forged")]).await;
        assert_eq!(claim.status, 403);
        let claim = b.post(&format!("/portal/offers/{id}/claim"), &[]).await;
        assert_eq!(claim.status, 403);
        assert_eq!(gw.lead(&id).await["stage"], "offered", "nothing was claimed");
    })
    .await;
}

#[tokio::test]
async fn pages_have_a_strict_policy_and_escape_every_lead_field() {
    each_engine(builder(), async |gw| {
        let evil = "<script>alert(1)</script>";
        let id = gw
            .post_json(&json!({"first_name": evil, "last_name": "\"><img src=x onerror=alert(2)>",
                                "email": "xss@example.com", "city": evil, "product": evil}))
            .await
            .lead_id();
        let mut op = Browser::new(gw);
        op.sign_in("console", ADMIN_KEY).await;
        let hits = op.get("/console/leads?q=xss@example.com").await;
        let page = op.get(&format!("/console/leads/{id}")).await;
        let mut p = Browser::new(gw);
        p.sign_in("portal", "partner-key-alpha").await;
        let offers = p.get("/portal").await;
        for page in [&hits, &page] {
            // (The name normalizer capitalises: `<Script>`.)
            assert!(page.html.to_lowercase().contains("&lt;script&gt;"), "shown, escaped: {}", page.html);
        }
        for page in [&hits, &page, &offers] {
            assert_eq!(page.status, 200);
            let lower = page.html.to_lowercase();
            assert!(!lower.contains("<script>alert") && !lower.contains("<img src=x"), "{}", page.html);
            let csp = page.csp.as_deref().unwrap();
            assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"), "{csp}");
            assert!(!csp.contains("unsafe-inline"));
            // The only script is the external file.
            assert_eq!(page.html.matches("<script").count(), 1);
            assert!(page.html.contains("<script src=\"/static/app.js\" defer></script>"));
            assert!(!page.html.contains("style=\""), "no inline styles either");
        }
    })
    .await;
}

#[tokio::test]
async fn the_operator_finds_a_lead_sees_its_history_and_redelivers_a_dead_letter() {
    let r = TestReceiver::start().await;
    let builder = GatewayBuilder::new()
        .webhook_buyer("crm", &r.url(), "")
        .routes("[[route]]\nname = \"main\"\nbuyers = [\"crm\"]\n");
    each_engine(builder, async |gw| {
        r.set(Mode::Status(500));
        let id = gw
            .post_json(&json!({"first_name": "Ola", "email": "ola@example.com", "phone": "(415) 555-2671", "vendor_lead_id": "V-77"}))
            .await
            .lead_id();
        let l = gw.wait_lead(&id, |l| l["deliveries"][0]["status"] == "dead").await;
        let delivery = l["deliveries"][0]["id"].as_str().unwrap().to_string();
        let mut op = Browser::new(gw);
        assert_eq!(op.get("/console").await.location.as_deref(), Some("/console/login"));
        op.sign_in("console", ADMIN_KEY).await;

        let dash = op.get("/console?period=hour").await;
        assert_eq!(dash.status, 200);
        assert!(dash.html.contains("<svg") && dash.html.contains("id=\"sources\""));
        assert!(dash.html.contains("data-total=\"received\">1<"), "{}", dash.html);
        assert!(dash.html.contains("data-total=\"dead_lettered\">1<"));

        for q in ["ola@example.com", "OLA@example.com", "(415) 555-2671", "4155552671", "V-77", id.as_str()] {
            let hits = op.get(&format!("/console/leads?q={}", urlencode(q))).await;
            assert!(hits.html.contains(&format!("/console/leads/{id}")), "search {q:?}:\n{}", hits.html);
        }
        let none = op.get("/console/leads?q=nobody@example.com").await;
        assert!(none.html.contains("No lead matches"));

        let page = op.get(&format!("/console/leads/{id}")).await;
        assert!(page.html.contains("dead_lettered") && page.html.contains("received"), "the whole history");
        assert!(page.html.contains("Redeliver"));

        let dead = op.get("/console/dead-letters").await;
        assert!(dead.html.contains(&delivery));
        r.set(Mode::Accept);
        let csrf = dead.csrf();
        let done = op.post(&format!("/console/deliveries/{delivery}/redeliver"), &[("csrf", &csrf)]).await;
        assert_eq!((done.status, done.location.as_deref()), (303, Some("/console/dead-letters")));
        gw.wait_lead(&id, |l| l["stage"] == "delivered").await;
        let after = op.get("/console/dead-letters").await;
        assert!(after.html.contains("Scheduled for redelivery.") && !after.html.contains(&delivery));

        // The other pages answer.
        for path in ["/console/submissions", "/console/config", "/console/channels", "/console?period=month"] {
            assert_eq!(op.get(path).await.status, 200, "{path}");
        }
        let csrf = op.get("/console/config").await.csrf();
        assert_eq!(op.post("/console/config/reload", &[("csrf", &csrf)]).await.status, 303);
        assert!(op.get("/console/config").await.html.contains("Reloaded: the new config is in service."));
    })
    .await;
}

#[tokio::test]
async fn a_failed_submission_is_replayed_from_the_console() {
    each_engine(GatewayBuilder::new(), async |gw| {
        let a = gw.post("application/json", "{\"email\": ").await;
        assert_eq!(a.status, 400, "{}", a.text);
        let mut op = Browser::new(gw);
        op.sign_in("console", ADMIN_KEY).await;
        let list = op.get("/console/submissions").await;
        assert!(list.html.contains("Replay"), "{}", list.html);
        let at = list.html.find("/replay\"").unwrap();
        let start = list.html[..at].rfind("/console/submissions/").unwrap();
        let action = format!("{}/replay", &list.html[start..at]);
        let done = op.post(&action, &[("csrf", &list.csrf())]).await;
        assert_eq!(done.status, 303);
        assert!(op.get("/console/submissions").await.html.contains("Replayed, still unreadable"));
    })
    .await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn every_route_in_the_openapi_document_is_served_and_the_docs_page_loads() {
    let gw = GatewayBuilder::new().start().await;
    let http =
        reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let doc: Value = http.get(gw.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for needle in [
        "/v1/leads",
        "/v1/partner/offers",
        "/v1/admin/report",
        "/healthz",
        "/v1/sources/{source}/meta",
        "/portal",
        "/console",
    ] {
        assert!(paths.contains_key(needle), "{needle} documented");
    }
    let mut checked = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let url = gw.url(if concrete.is_empty() { "/" } else { &concrete });
            let req = match method.as_str() {
                "get" => http.get(&url),
                "post" => http.post(&url),
                other => panic!("unexpected method {other} on {path}"),
            };
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            // The router's fallback answers `route not found`: nothing documented may hit it.
            assert!(
                !body.contains("route not found"),
                "{method} {path} is documented but not served: {status}"
            );
            assert!(status < 500, "{method} {path}: {status} {body}");
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked} operations");
    let undocumented = http.get(gw.url("/v1/nothing-here")).send().await.unwrap().text().await.unwrap();
    assert!(undocumented.contains("route not found"), "the fallback is what the check above looks for");

    let docs = http.get(gw.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    let init = http.get(gw.url("/docs/swagger-initializer.js")).send().await.unwrap().text().await.unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
}

#[tokio::test]
async fn behind_a_tls_proxy_the_session_cookie_is_secure() {
    let gw = builder().start().await;
    let http =
        reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = http.get(gw.url("/portal/login")).header("x-forwarded-proto", "https").send().await.unwrap();
    let login_cookie = form.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        login_cookie.contains("; Secure") && login_cookie.contains("Path=/portal/login"),
        "{login_cookie}"
    );
    let token = login_cookie.split(';').next().unwrap().trim_start_matches("lg_login=").to_string();
    let signed = http
        .post(gw.url("/portal/login"))
        .header("x-forwarded-proto", "https")
        .header("cookie", format!("lg_login={token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={token}&key=partner-key-alpha"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let session = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("lg_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict") && session.contains("; Secure"),
        "{session}"
    );
}

#[tokio::test]
async fn claim_the_next_one_takes_the_best_offer_and_says_when_there_is_none() {
    each_engine(builder(), async |gw| {
        let first = gw.post_json(&lead(5)).await.lead_id();
        let mut b = Browser::new(gw);
        b.sign_in("portal", "partner-key-beta").await;
        let page = b.get("/portal?order=score").await;
        assert!(page.html.contains(&first) && page.html.contains("Claim the next one"));
        let csrf = page.csrf();
        let got = b.post("/portal/claims/next", &[("csrf", &csrf)]).await;
        assert_eq!(got.location, Some(format!("/portal/leads/{first}")));
        let none = b.post("/portal/claims/next", &[("csrf", &csrf)]).await;
        assert_eq!(none.location.as_deref(), Some("/portal"));
        assert!(b.get("/portal").await.html.contains("Nothing to claim right now."));
    })
    .await;
}
